// As webpack's Getting Started guide writes it.
const path = require("node:path");

module.exports = {
  entry: "./src/index.js",
  output: { filename: "main.js", path: path.resolve(__dirname, "dist") },
  mode: "production",
};
