// `npm run test:browser`: the sample SLA report opened in a real browser (Debian's Chromium,
// headless): it loads with no network request of any kind, logs no error, and every chart draws
// marks. A screenshot goes to reports/sla-report.png.
import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { main as makeSample, SAMPLE_REPORT } from '../sla/sample-report';
import { launchChromium, openOffline, readCharts } from './offline-page';

let browser: Browser;

beforeAll(async () => {
  expect(await makeSample([])).toBe(0);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
});

test('the sample report loads offline with no request, no console error, and every chart drawn', { timeout: 120_000 }, async () => {
  const { page, errors, requests } = await openOffline(browser, SAMPLE_REPORT);

  const charts = await readCharts(page);
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
