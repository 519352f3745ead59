// The console walkthrough in Debian's chromium (playwright-core drives it), run by
// tests/admin/console.rs against a daemon it started. Every step checks what a person would
// see; any failed check exits 1 with what was expected. Screenshots go to $SHOTS.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`walkthrough: ${k} is not set`);
  return v;
};
const BASE = env('BASE'), TOKEN = env('TOKEN'), SHOTS = env('SHOTS');
const BOUNCED = env('BOUNCED'), CORRECTED = env('CORRECTED'), COMPLAINED = env('COMPLAINED');
const WATCH = `127.0.0.1:${env('WATCH_PORT')}`;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let step = 'start';
function check(cond, what) {
  if (!cond) throw new Error(`step "${step}": ${what}`);
  console.log(`ok - ${step}: ${what}`);
}

async function browser(viewport = { width: 1280, height: 900 }) {
  const dir = mkdtempSync(join(tmpdir(), 'rebound-console-'));
  const ctx = await chromium.launchPersistentContext(dir, { executablePath: env('CHROMIUM'), headless: true, args: ARGS, viewport });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const remote = [];
  ctx.on('request', (r) => { if (r.url().includes(WATCH)) remote.push(r.url()); });
  return { ctx, page, remote, close: async () => { await ctx.close(); rmSync(dir, { recursive: true, force: true }); } };
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function signIn(page, name, password) {
  await page.goto(`${BASE}/`);
  check(page.url().includes('/ui/login'), `/ is sent to the sign-in page (${page.url()})`);
  await page.fill('input[name=name]', name);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
}

const notice = async (page) => (await page.locator('.notice').allTextContents()).join(' ');

/// Reloads `url` until `pred(page)` holds (bounded), for what the daemon does in the background.
async function until(page, url, pred, what, seconds = 30) {
  for (let i = 0; i < seconds * 2; i++) {
    await page.goto(url);
    if (await pred(page)) return check(true, what);
    await page.waitForTimeout(500);
  }
  check(false, what);
}

function sendMail(to, subject) {
  const py = `import smtplib\ns=smtplib.SMTP('127.0.0.1',${env('SMTP_PORT')},timeout=20)\ns.sendmail('office@school.test',['${to}'],'Subject: ${subject}\\r\\n\\r\\nAgain.\\r\\n')\ns.quit()\n`;
  execFileSync('python3', ['-c', py]);
}

async function operator() {
  const b = await browser();
  const { page } = b;
  step = 'sign-in page';
  await page.goto(`${BASE}/ui/login`);
  await shot(page, '01-sign-in');
  step = 'wrong token';
  await page.fill('input[name=password]', 'not-the-token');
  const bad = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  check(bad[0].status() === 401 && (await notice(page)).includes('did not match'), 'a wrong token is refused with 401');
  step = 'sign in with the API token';
  await signIn(page, '', TOKEN);
  check((await page.locator('h1').textContent()) === 'Dashboard', 'the dashboard is shown after sign-in');
  check((await page.locator('svg.chart rect').count()) === 24, 'deliveries per hour drawn as 24 SVG bars');
  check((await page.content()).includes('bounced'), 'the dashboard counts the bounce');
  const cookies = await b.ctx.cookies();
  const session = cookies.find((c) => c.name === 'rebound_session');
  check(session && session.httpOnly && session.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict');
  await shot(page, '02-dashboard');

  step = 'undelivered report';
  await page.goto(`${BASE}/ui/undelivered`);
  const row = page.locator('tr', { hasText: BOUNCED });
  check((await row.count()) === 1, `${BOUNCED} is in the undelivered report`);
  check((await row.locator('.st-bounced').textContent()) === 'bounced', 'its status is bounced');
  check((await row.locator('a[href^="/ui/messages/"]').count()) === 1, 'the row links to its message');
  await shot(page, '03-undelivered');
  const csv = await b.ctx.request.get(`${BASE}/ui/undelivered.csv`);
  check(csv.status() === 200 && (await csv.text()).includes(`${BOUNCED},bounced`), 'the CSV export has the row');

  step = 'resend to a corrected address';
  await row.locator('input[name=to]').fill(CORRECTED);
  await Promise.all([page.waitForNavigation(), row.locator('button', { hasText: 'Resend' }).click()]);
  check((await notice(page)).includes(`resent to ${CORRECTED}`), 'the resend is confirmed');
  await until(page, `${BASE}/ui/undelivered?q=${encodeURIComponent(BOUNCED)}`, async (p) => (await p.locator('tr', { hasText: BOUNCED }).count()) === 0, 'the row leaves the report once the resend is delivered');
  check((await page.content()).includes('resolved by a delivered resend'), 'the page says a row was resolved by a resend');
  await shot(page, '04-undelivered-after-resend');

  step = 'comms log';
  await page.goto(`${BASE}/ui/log?recipient=${encodeURIComponent(CORRECTED)}`);
  check((await page.locator('.st-delivered').count()) >= 1, `${CORRECTED} shows delivered in its log`);
  await page.locator('details summary').first().click();
  check(await page.locator('details[open] dt', { hasText: 'Remote host' }).isVisible(), 'an entry opens to the whole event');
  await shot(page, '05-comms-log');

  step = 'remove a block';
  await page.goto(`${BASE}/ui/suppressions?q=${encodeURIComponent(BOUNCED)}`);
  const srow = page.locator('tr', { hasText: BOUNCED });
  check((await srow.locator('.cross').count()) === 1, 'a bounced address has a red cross');
  await shot(page, '06-suppressions');
  await Promise.all([page.waitForNavigation(), srow.locator('button', { hasText: 'Remove block' }).click()]);
  check((await notice(page)).includes('no longer suppressed'), 'the block is removed');
  sendMail(BOUNCED, 'Mailed again');
  await until(page, `${BASE}/ui/log?recipient=${encodeURIComponent(BOUNCED)}&status=bounced`, async (p) => (await p.locator('tr .st-bounced').count()) >= 2, 'the address is mailed again (a second delivery attempt, not dropped)');
  await page.goto(`${BASE}/ui/log?recipient=${encodeURIComponent(BOUNCED)}&status=dropped`);
  check((await page.locator('tr .st-dropped').count()) === 0, 'nothing to it was dropped');

  step = 'complaint needs consent';
  await page.goto(`${BASE}/ui/suppressions?q=${encodeURIComponent(COMPLAINED)}`);
  const crow = page.locator('tr', { hasText: COMPLAINED });
  check((await crow.locator('s.struck').count()) === 1, 'a complained address is struck through');
  await crow.locator('input[name=consent]').evaluate((el) => el.removeAttribute('required'));
  await Promise.all([page.waitForNavigation(), crow.locator('button', { hasText: 'Remove block' }).click()]);
  check((await notice(page)).includes('consent'), 'removal without the consent box is refused, saying why');
  const still = page.locator('tr', { hasText: COMPLAINED });
  check((await still.count()) === 1, 'the complaint entry is still there');
  await shot(page, '07-consent-refused');
  await still.locator('input[name=consent]').check();
  await Promise.all([page.waitForNavigation(), still.locator('button', { hasText: 'Remove block' }).click()]);
  check((await notice(page)).includes('consent, confirmed by api-token'), 'with the consent box ticked it is removed and the confirmation named');

  step = 'CSRF';
  const noToken = await b.ctx.request.post(`${BASE}/ui/actions/unblock`, { form: { address: BOUNCED } , maxRedirects: 0 });
  check(noToken.status() === 403, `a form without its CSRF token is refused (${noToken.status()})`);
  const wrongToken = await b.ctx.request.post(`${BASE}/ui/actions/retry`, { form: { id: env('GREY_ID'), csrf: 'f'.repeat(64) }, maxRedirects: 0 });
  check(wrongToken.status() === 403, `a form with a wrong CSRF token is refused (${wrongToken.status()})`);

  step = 'queue';
  await page.goto(`${BASE}/ui/queue`);
  const qrow = page.locator('tr', { hasText: env('GREY_ID') });
  check((await qrow.count()) === 1, 'the greylisted message waits in the queue');
  await shot(page, '08-queue');
  await Promise.all([page.waitForNavigation(), qrow.locator('button', { hasText: 'Retry now' }).click()]);
  check((await notice(page)).includes('tried again now'), 'retry now is confirmed');

  step = 'hostile preview';
  await page.goto(`${BASE}/ui/messages/${env('HOSTILE_ID')}`);
  const frameEl = page.locator('iframe.preview');
  check((await frameEl.getAttribute('sandbox')) === '', 'the preview iframe is sandboxed (no allowances)');
  const frame = await (await frameEl.elementHandle()).contentFrame();
  await frame.waitForSelector('#hello', { timeout: 10000 }).catch(() => {});
  check((await frame.locator('p').first().textContent() ?? '').includes('Hello parents'), 'the message body is shown');
  await page.waitForTimeout(1500);
  check((await frame.title()) !== 'PWNED' && (await page.title()) !== 'PWNED', 'the script did not run');
  check(b.remote.length === 0, `no request went to the watcher (${b.remote.join(', ')})`);
  const prev = await b.ctx.request.get(`${BASE}/ui/messages/${env('HOSTILE_ID')}/preview`);
  const csp = prev.headers()['content-security-policy'] ?? '';
  check(csp.includes("default-src 'none'") && csp.includes('img-src data:') && csp.includes('sandbox'), `the preview has a strict CSP (${csp})`);
  check(!(await prev.text()).toLowerCase().includes('<script'), 'the sanitised preview has no script element');
  await shot(page, '09-message-preview');

  step = 'delete';
  await page.goto(`${BASE}/ui/queue`);
  await Promise.all([page.waitForNavigation(), page.locator('tr', { hasText: env('GREY_ID') }).locator('button', { hasText: 'Delete' }).click()]);
  check((await notice(page)).includes('deleted'), 'delete is confirmed');

  step = 'sign out';
  await page.goto(`${BASE}/ui/`);
  await shot(page, '10-dashboard-after');
  await Promise.all([page.waitForNavigation(), page.click('form.signout button')]);
  await page.goto(`${BASE}/ui/undelivered`);
  check(page.url().includes('/ui/login'), 'after sign-out the pages ask to sign in again');
  await b.close();
}

async function viewer() {
  const b = await browser();
  const { page } = b;
  step = 'viewer sign-in';
  await signIn(page, env('VIEWER_NAME'), env('VIEWER_PASS'));
  check((await page.locator('.who').textContent()).includes('viewer'), 'the viewer is signed in as a viewer');
  step = 'viewer cannot act';
  await page.goto(`${BASE}/ui/suppressions`);
  check((await page.locator('button', { hasText: 'Remove block' }).count()) === 0, 'a viewer gets no Remove block buttons');
  await page.goto(`${BASE}/ui/undelivered`);
  check((await page.locator('button', { hasText: 'Resend' }).count()) === 0, 'a viewer gets no Resend buttons');
  await shot(page, '11-viewer-undelivered');
  const csrf = await page.locator('form.signout input[name=csrf]').getAttribute('value');
  const tried = await b.ctx.request.post(`${BASE}/ui/actions/unblock`, { form: { address: BOUNCED, csrf }, maxRedirects: 0 });
  check(tried.status() === 403 && (await tried.text()).includes('viewer'), `a viewer's form with a valid CSRF token is still refused (${tried.status()})`);
  await b.close();
}

/// What sticks out of the viewport sideways: the page's own width, and the elements (outside
/// a `.scroll` box, which scrolls its table by itself) whose right edge passes the viewport's.
async function overflow(page) {
  return page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const out = [];
    for (const el of document.querySelectorAll('body *')) {
      if (el.closest('.scroll')) continue;
      const r = el.getBoundingClientRect();
      if (r.width > 0 && (r.right > vw + 1 || r.left < -1)) out.push(`${el.tagName.toLowerCase()}${el.className ? '.' + el.className : ''} (${Math.round(r.left)}..${Math.round(r.right)})`);
    }
    return { page: document.documentElement.scrollWidth, vw, out: out.slice(0, 5) };
  });
}

async function phone() {
  const b = await browser({ width: 390, height: 844 });
  const { page } = b;
  step = 'phone sign-in';
  await page.goto(`${BASE}/ui/login`);
  let o = await overflow(page);
  check(o.page <= o.vw && o.out.length === 0, `the sign-in page fits 390 px (${o.page} px wide; ${o.out.join(', ')})`);
  await signIn(page, '', TOKEN);
  const pages = [
    ['12-phone-dashboard', '/ui/'],
    ['13-phone-undelivered', '/ui/undelivered'],
    ['14-phone-comms-log', `/ui/log?recipient=${encodeURIComponent(BOUNCED)}`],
    ['15-phone-suppressions', '/ui/suppressions'],
    ['16-phone-queue', '/ui/queue'],
    ['17-phone-message', `/ui/messages/${env('HOSTILE_ID')}`],
  ];
  for (const [name, path] of pages) {
    step = `phone ${path}`;
    const r = await page.goto(`${BASE}${path}`);
    check(r.status() === 200, `${path} answers 200 at phone width`);
    o = await overflow(page);
    check(o.page <= o.vw, `${path}: the page is no wider than the 390 px screen (${o.page} px)`);
    check(o.out.length === 0, `${path}: nothing sticks out sideways outside a scrolling table (${o.out.join(', ')})`);
    await shot(page, name);
  }
  await b.close();
}

try {
  await operator();
  await viewer();
  await phone();
  console.log('walkthrough: all checks passed');
} catch (e) {
  console.error(`walkthrough FAILED: ${e.stack ?? e}`);
  process.exit(1);
}
