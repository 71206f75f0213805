import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';

/** Debian's chromium package (deploy/setup.sh installs it); playwright-core downloads nothing. */
export const chromiumPath = process.env.FB_CHROMIUM ?? '/usr/bin/chromium';

/**
 * A headless Chromium driven by playwright-core. As root Chromium's sandbox cannot start, so it runs
 * without it (the pages are our own, on loopback).
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `no Chromium at ${chromiumPath}: install Debian's chromium package (deploy/setup.sh does; apt-get install chromium) or set FB_CHROMIUM`,
    );
  }
  const { chromium } = await import('playwright-core');
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [...(root ? ['--no-sandbox'] : []), '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

/**
 * Collects what a page reports as going wrong: uncaught errors, console errors (a Content-Security-
 * Policy violation is one) and failed requests, so a test can require none.
 */
export function pageProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  page.on('requestfailed', (req) => {
    // An EventSource closed by navigation is not a failure of the page.
    if (req.url().includes('/console/events')) return;
    problems.push(`request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`);
  });
  return problems;
}
