// Debian's Chromium, headless, through playwright-core: never a browser Playwright would
// download (`CHROMIUM` names another binary). The flags keep it off the network (no
// updates, sync or first-run pages) and out of /dev/shm, which is small in containers.
// tests/pkg runs from a copy of its files (scripts/test-pkg.sh copies this one beside
// them), so the repository is found through VCC_ROOT when it is set.
import { createRequire } from "node:module";

const ROOT = process.env.VCC_ROOT ?? new URL("../", import.meta.url).pathname;

/** Launches the browser; close it with `browser.close()`. */
export function launchChromium() {
  const { chromium } = createRequire(`${ROOT.replace(/\/?$/, "/")}package.json`)("playwright-core");
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}
