// Writes the npm package's README (pkg/README.md) from the repository's: the parts a
// package user needs (what it is, install, using it with each tool, the JS API), with
// every relative link turned into plain text and images dropped, since a package page
// has no repository around it to link into. Usage: node scripts/pkg-readme.mjs <out>
import { readFileSync, writeFileSync } from "node:fs";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const keep = ["# vcc-auth", "## Install", "## Using it with", "## The JS API"];
const sections = readme.split(/^(?=#{1,2} )/m);
const kept = sections.filter((s) => keep.some((h) => s.startsWith(h)));
for (const h of keep) if (!kept.some((s) => s.startsWith(h))) throw new Error(`README.md has no section "${h}"`);
let text = kept.join("");
text = text.replace(/^!\[[^\]]*\]\([^)]*\)\s*$/gm, ""); // images
text = text.replace(/\[([^\]]+)\]\((?![a-z]+:)[^)]*\)/g, "$1"); // relative links: their text
text +=
  "\n## More\n\nThe edge gateway (a Cloudflare Worker that keeps the client secret server-side), the demo, the\ndesign notes and the benchmarks are in the source repository. License: MIT OR Apache-2.0.\n";
if (/\]\((?![a-z]+:)/.test(text)) throw new Error("a relative link survived");
writeFileSync(process.argv[2], text);
