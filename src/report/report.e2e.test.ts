// The written page in a real browser (Debian's Chromium, headless, driven by playwright-core): no script
// error, no request beyond the page itself, every image and audio source loads, every figure has a size.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { runReportCommand } from '../../test/helpers/report-command.ts';
import { writeSyntheticInputs } from '../../test/helpers/report-inputs.ts';

// The page's globals, typed just enough for the checks below (the project's tsconfig has no DOM library).
interface PageAudio {
  readyState: number;
  error: { code: number } | null;
  duration: number;
  addEventListener(type: string, listener: () => void, options?: { once: boolean }): void;
}
interface PageImage {
  src: string;
  complete: boolean;
  naturalWidth: number;
  onload: (() => void) | null;
  onerror: (() => void) | null;
}
interface PageElement {
  getAttribute(name: string): string | null;
  getBoundingClientRect(): { width: number; height: number };
}
declare const document: { querySelectorAll(selector: string): Iterable<unknown> };
declare const Image: new () => PageImage;

const chromiumPath = '/usr/bin/chromium';
const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('report.html in headless Chromium', { skip: existsSync(chromiumPath) ? false : `${chromiumPath} is not installed` }, () => {
  let root: string;
  let page: string;

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'kwshield-report-e2e-'));
    const s = await writeSyntheticInputs(root, { models: ['resnet'], attacks: ['badnets'], seeds: [0, 1], ratios: [0.1] });
    page = path.join(root, 'out', 'report.html');
    // Through the command, so its success path is tested here too.
    const result = JSON.parse(await runReportCommand([s.results, '--out', page, '--json']));
    assert.equal(result.out, page);
    assert.equal(result.skipped, s.corruptFiles.length);
    assert.ok(result.pngs.length >= 7 && result.pngs.every((p: string) => existsSync(p)), 'a PNG of every figure');
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('loads without errors or outside requests, with every source loaded and every figure drawn', { timeout: 90_000 }, async () => {
    const profile = path.join(root, 'chromium-profile');
    mkdirSync(profile);
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: chromiumArgs,
      viewport: { width: 1400, height: 900 },
    });
    try {
      const tab = await context.newPage();
      const pageErrors: string[] = [];
      const consoleErrors: string[] = [];
      const failed: string[] = [];
      const requests: string[] = [];
      tab.on('pageerror', (e) => pageErrors.push(String(e)));
      tab.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(m.text());
      });
      tab.on('requestfailed', (r) => failed.push(`${r.url().slice(0, 80)}: ${r.failure()?.errorText}`));
      tab.on('request', (r) => {
        if (!r.url().startsWith('data:')) requests.push(r.url());
      });
      const url = pathToFileURL(page).href;
      await tab.goto(url, { waitUntil: 'load' });

      const sources = await tab.evaluate(async () => {
        const audios = [...document.querySelectorAll('audio')] as PageAudio[];
        await Promise.all(
          audios.map((a) =>
            a.readyState >= 1
              ? null
              : new Promise<void>((done) => {
                  a.addEventListener('loadedmetadata', () => done(), { once: true });
                  a.addEventListener('error', () => done(), { once: true });
                  setTimeout(() => done(), 10_000);
                }),
          ),
        );
        const images = ([...document.querySelectorAll('img')] as PageImage[]).map((i) => ({ src: i.src.slice(0, 40), ok: i.complete && i.naturalWidth > 0 }));
        return {
          audio: audios.map((a) => ({ ready: a.readyState, error: a.error?.code ?? null, duration: a.duration })),
          images,
          figures: ([...document.querySelectorAll('figure svg')] as PageElement[]).map((svg) => {
            const box = svg.getBoundingClientRect();
            return { width: box.width, height: box.height };
          }),
          // Each heatmap inside an SVG decoded on its own: a broken data: URI would draw nothing, silently.
          svgImages: await Promise.all(
            ([...document.querySelectorAll('figure svg image')] as PageElement[]).map(
              (el) =>
                new Promise<boolean>((done) => {
                  const img = new Image();
                  img.onload = () => done(img.naturalWidth > 0);
                  img.onerror = () => done(false);
                  img.src = el.getAttribute('href') ?? el.getAttribute('xlink:href') ?? '';
                }),
            ),
          ),
        };
      });
      assert.deepEqual(pageErrors, []);
      assert.deepEqual(consoleErrors, []);
      assert.deepEqual(failed, []);
      assert.deepEqual(requests, [url], 'the page itself is the only request');
      assert.ok(sources.audio.length > 0, 'the example clips have players');
      for (const a of sources.audio) {
        assert.equal(a.error, null);
        assert.ok(a.ready >= 1 && a.duration > 0, JSON.stringify(a));
      }
      for (const i of sources.images) assert.ok(i.ok, i.src);
      assert.ok(sources.svgImages.length > 0, 'the spectrograms are images inside their figures');
      assert.ok(sources.svgImages.every(Boolean), 'every heatmap image decodes');
      assert.ok(sources.figures.length >= 7, `figures: ${sources.figures.length}`);
      for (const f of sources.figures) assert.ok(f.width > 50 && f.height > 50, JSON.stringify(f));

      const shot = path.join(root, 'report-screenshot.png');
      await tab.screenshot({ path: shot, fullPage: true });
      assert.ok(statSync(shot).size > 10_000);
      // The temp folder goes when the test ends; set KWSHIELD_REPORT_SCREENSHOT=FILE to keep a copy.
      if (process.env.KWSHIELD_REPORT_SCREENSHOT) copyFileSync(shot, process.env.KWSHIELD_REPORT_SCREENSHOT);
    } finally {
      await context.close();
    }
  });
});
