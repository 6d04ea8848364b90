// `npm run test:browser`: the sample SLA report opened in a real browser (Debian's Chromium,
// headless): it loads with no network request of any kind, logs no error, and every chart draws
// marks. A screenshot goes to reports/sla-report.png.
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { main as makeSample, SAMPLE_REPORT } from '../sla/sample-report';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  }
  expect(await makeSample([])).toBe(0);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // As root, in a closed network: no sandbox, and none of Chromium's own background connections.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
});

test('the sample report loads offline with no request, no console error, and every chart drawn', { timeout: 120_000 }, async () => {
  const url = pathToFileURL(resolve(SAMPLE_REPORT)).href;
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
      // Vega draws data marks under `role-mark` groups, axes and legends under other roles.
      marks: s.querySelectorAll('svg g.role-mark > *').length,
      label: s.querySelector('svg')?.getAttribute('aria-label') ?? '',
      tableRows: s.querySelectorAll('details table tbody tr').length,
    }))
  );
  expect(charts.map((c) => c.title)).toEqual([
    'Breach rate per priority, per week',
    'Time to first reply, per priority',
    'Time to first reply, per priority (business hours)',
    'Reroutes and escalations, per week',
    'Open reminders by age, at the end of the period',
  ]);
  for (const chart of charts) {
    expect(chart.marks, chart.title).toBeGreaterThan(0);
    expect(chart.definition.length, chart.title).toBeGreaterThan(40);
    expect(chart.label, chart.title).toContain(chart.title);
    expect(chart.tableRows, chart.title).toBeGreaterThan(0);
  }
  const headline = await page.$$eval('.tile .name', (names) => names.map((n) => n.textContent));
  expect(headline).toEqual(['Response Tasks', 'Median first reply', '90th percentile', 'Breach rate', 'Reroutes', 'Escalations']);
  const links = await page.$$eval('#slowest ~ table a, section a', (as) => as.map((a) => a.getAttribute('href') ?? ''));
  expect(links.length).toBeGreaterThan(0);
  expect(links.filter((l) => !/^https:\/\/app\.medplum\.com\/Communication\/[\w-]+$/.test(l))).toEqual([]);

  mkdirSync('reports', { recursive: true });
  await page.screenshot({ path: 'reports/sla-report.png', fullPage: true });
  expect(errors).toEqual([]);
  expect(requests).toEqual([]);
});
