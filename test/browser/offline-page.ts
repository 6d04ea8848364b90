// What both browser tests share: Debian's Chromium launched headless in a closed network, a page
// opened from a file with every other request refused and recorded, console errors collected, and
// each `section.chart` read back (title, definition, data marks, aria label, table rows).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    // As root, in a closed network: no sandbox, and none of Chromium's own background connections.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface OfflinePage {
  page: Page;
  /** Console errors and uncaught page errors. */
  errors: string[];
  /** Every request other than the page itself (each one refused). */
  requests: string[];
}

/** Opens `file` with every other request refused and recorded. */
export async function openOffline(browser: Browser, file: string): Promise<OfflinePage> {
  const url = pathToFileURL(resolve(file)).href;
  const page = await browser.newPage({ viewport: { width: 900, height: 1200 } });
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => r.url() !== url && requests.push(r.url()));
  await page.route('**/*', (route) => (route.request().url() === url ? route.continue() : route.abort()));
  await page.goto(url, { waitUntil: 'load' });
  return { page, errors, requests };
}

export interface ChartOnPage {
  title: string;
  definition: string;
  /** Data marks drawn: Vega puts them under `role-mark` groups, axes and legends under other roles. */
  marks: number;
  label: string;
  tableRows: number;
}

export function readCharts(page: Page): Promise<ChartOnPage[]> {
  return page.$$eval('section.chart', (sections) =>
    sections.map((s) => ({
      title: s.querySelector('h2')?.textContent ?? '',
      definition: s.querySelector('.definition')?.textContent ?? '',
      marks: s.querySelectorAll('svg g.role-mark > *').length,
      label: s.querySelector('svg')?.getAttribute('aria-label') ?? '',
      tableRows: s.querySelectorAll('details table tbody tr').length,
    }))
  );
}
