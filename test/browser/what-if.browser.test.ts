// `npm run test:browser`: the sample what-if page opened in a real browser (Debian's Chromium,
// headless): it loads with no network request of any kind, logs no error, every chart with data
// draws marks, and it says how far to trust it and what the replay cannot know. A screenshot goes
// to reports/what-if.png.
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { main as makeSample, SAMPLE_PAGE } from '../what-if/sample';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  }
  expect(await makeSample([])).toBe(0);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 600_000);

afterAll(async () => {
  await browser?.close();
});

test('the sample what-if page loads offline with no request, no console error, its charts drawn, its trust and limits said', { timeout: 120_000 }, async () => {
  const url = pathToFileURL(resolve(SAMPLE_PAGE)).href;
  const page = await browser.newPage({ viewport: { width: 900, height: 1200 } });
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => r.url() !== url && requests.push(r.url()));
  await page.route('**/*', (route) => (route.request().url() === url ? route.continue() : route.abort()));
  await page.goto(url, { waitUntil: 'load' });

  const charts = await page.$$eval('section.chart', (sections) =>
    sections.map((s) => ({
      title: s.querySelector('h2')?.textContent ?? '',
      definition: s.querySelector('.definition')?.textContent ?? '',
      marks: s.querySelectorAll('svg g.role-mark > *').length,
      label: s.querySelector('svg')?.getAttribute('aria-label') ?? '',
      tableRows: s.querySelectorAll('details table tbody tr').length,
    }))
  );
  expect(charts.map((c) => c.title)).toEqual([
    'Reminders created, per week',
    'Escalations per week, by how far they went',
    'Reminders still open at the end of the period',
    'Response Tasks opened, per week',
    'Tasks sent to the pool or a cover, per week',
    'First-reply breach rate, per week',
  ]);
  for (const chart of charts) {
    expect(chart.marks, chart.title).toBeGreaterThan(0);
    expect(chart.definition.length, chart.title).toBeGreaterThan(40);
    expect(chart.label, chart.title).toContain(chart.title);
    expect(chart.tableRows, chart.title).toBeGreaterThan(0);
  }
  const heads = await page.$$eval('#totals ~ table th, section[aria-labelledby="totals"] th', (ths) => ths.map((t) => t.textContent));
  expect(heads).toEqual(['', 'current', 'proposed', 'difference']);
  const trust = await page.$$eval('.trust li', (lis) => lis.map((l) => l.textContent ?? ''));
  expect(trust.at(-1)).toMatch(/^agreement: \d+(\.\d)?% of what either the bots or the replay did, both did$/);
  const limits = await page.$$eval('section[aria-labelledby="limits"] li', (lis) => lis.map((l) => l.textContent ?? ''));
  expect(limits.some((l) => l.includes('Schedules as they are now'))).toBe(true);

  mkdirSync('reports', { recursive: true });
  await page.screenshot({ path: 'reports/what-if.png', fullPage: true });
  expect(errors).toEqual([]);
  expect(requests).toEqual([]);
});
