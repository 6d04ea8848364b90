// `npm run test:browser`: the sample what-if page opened in a real browser (Debian's Chromium,
// headless): it loads with no network request of any kind, logs no error, every chart with data
// draws marks, and it says how far to trust it and what the replay cannot know. A screenshot goes
// to reports/what-if.png.
import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { main as makeSample, SAMPLE_PAGE } from '../what-if/sample';
import { launchChromium, openOffline, readCharts } from './offline-page';

let browser: Browser;

beforeAll(async () => {
  expect(await makeSample([])).toBe(0);
  browser = await launchChromium();
}, 600_000);

afterAll(async () => {
  await browser?.close();
});

test('the sample what-if page loads offline with no request, no console error, its charts drawn, its trust and limits said', { timeout: 120_000 }, async () => {
  const { page, errors, requests } = await openOffline(browser, SAMPLE_PAGE);

  const charts = await readCharts(page);
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
