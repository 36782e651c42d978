import { expect, test, type Browser, type Page } from '@playwright/test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEMO_PASSWORD } from '../e2e-user';

// Against `giftrecon demo` (once on SQLite, once on PostgreSQL: see the projects in
// playwright.config.ts): a simulator vendor, two reconciled days with every class, and a login
// per role. Each test works on a different class or page, so their order does not matter.
const VENDOR = 'demo-vendor';
const day = (back: number) => new Date(Date.now() - back * 86_400_000).toISOString().slice(0, 10);
const YESTERDAY = day(1);
const SCREENS = path.resolve(__dirname, '../screenshots');

async function signIn(page: Page, user: string) {
  await page.goto('/login');
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password').fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
}

async function openHydrated(page: Page, where: string) {
  await page.goto(where);
  await expect(page.locator('[data-hydrated="true"]')).toBeAttached();
}

async function shoot(page: Page, name: string) {
  fs.mkdirSync(SCREENS, { recursive: true });
  const db = test.info().project.metadata.database;
  await page.screenshot({ path: path.join(SCREENS, db === 'sqlite' ? `${name}.png` : `${name}-${db}.png`), fullPage: true });
}

async function asUser(browser: Browser, user: string): Promise<Page> {
  const baseURL = test.info().project.use.baseURL;
  const page = await (await browser.newContext({ baseURL, viewport: { width: 1280, height: 900 } })).newPage();
  await signIn(page, user);
  return page;
}

function token(): string {
  return fs.readFileSync(test.info().project.metadata.tokenFile, 'utf8').trim();
}

test('the overview of a day equals the summary API', async ({ browser }) => {
  const page = await asUser(browser, 'demo-preparer');
  await openHydrated(page, '/');
  const glance = page.getByTestId('day-overview');
  await expect(glance.getByLabel('Day')).toHaveValue(YESTERDAY);
  const api = await page.request.get(
    `/api/v1/reconciliation/summary?vendor=${VENDOR}&date=${YESTERDAY}`,
    { headers: { Authorization: `Bearer ${token()}` } },
  );
  expect(api.status()).toBe(200);
  const summary = await api.json();
  for (const [cls, n] of Object.entries(summary.counts as Record<string, number>)) {
    await expect(glance.getByTestId('day-counts').locator(`tr[data-class="${cls}"] td`)).toHaveText(String(n));
  }
  for (const [currency, t] of Object.entries(summary.totals as Record<string, { internal_amount: string; internal_count: number; vendor_amount: string; vendor_count: number }>)) {
    const row = glance.getByTestId('day-totals').locator(`tr[data-currency="${currency}"]`);
    await expect(row.locator('td').nth(0)).toHaveText(`${t.internal_amount} (${t.internal_count})`);
    await expect(row.locator('td').nth(1)).toHaveText(`${t.vendor_amount} (${t.vendor_count})`);
  }
  // Every class is open somewhere in the demo day.
  await expect(glance.getByTestId('day-open').locator('tbody tr')).not.toHaveCount(0);
  await shoot(page, 'overview');
});

test('backfilling a vendor-only item drops the count and the order appears', async ({ browser }) => {
  const page = await asUser(browser, 'demo-preparer');
  await openHydrated(page, `/discrepancies?vendor=${VENDOR}&class=vendor_only`);
  const rows = page.getByTestId('queue').locator('tbody tr[data-class]');
  const before = await rows.count();
  expect(before).toBeGreaterThan(0);
  const first = rows.first();
  const vendorOrderId = (await first.locator('.ids').innerText()).trim();
  await first.getByRole('button', { name: 'Backfill' }).click();
  await expect(page.getByTestId('outcomes')).toContainText('Backfilled: order ord_');
  await expect(rows).toHaveCount(before - 1);
  await shoot(page, 'queue');

  await openHydrated(page, '/orders');
  await page.getByLabel('Search').fill(vendorOrderId);
  await page.getByRole('button', { name: 'Find' }).click();
  await expect(page.getByTestId('orders').locator('tbody tr')).toHaveCount(1);
  await expect(page.getByTestId('timeline')).toContainText('backfilled');
});

test('retrying an internal-only item reaches the simulator and the order is fulfilled', async ({ browser }) => {
  test.setTimeout(60_000);
  const page = await asUser(browser, 'demo-preparer');
  await openHydrated(page, `/discrepancies?vendor=${VENDOR}&class=internal_only`);
  const first = page.getByTestId('queue').locator('tbody tr[data-class]').first();
  const key = (await first.locator('.key').innerText()).trim();
  // Keyboard: the first row is under the cursor; "r" is Retry's shortcut.
  await page.locator('.queue-keys').focus();
  await page.keyboard.press('r');
  await expect(page.getByTestId('outcomes')).toContainText('Retry queued');
  await openHydrated(page, '/orders');
  await page.getByLabel('Search').fill(key);
  await expect
    .poll(
      async () => {
        await page.getByRole('button', { name: 'Find' }).click();
        return page.getByTestId('orders').locator('tbody tr').first().innerText();
      },
      { timeout: 45_000, intervals: [1_000] },
    )
    .toContain('fulfilled');
  await expect(page.getByTestId('timeline')).toContainText('retry requested');
});

test('a clearing entry is approved by a second person', async ({ browser }) => {
  const preparer = await asUser(browser, 'demo-preparer');
  await openHydrated(preparer, '/close');
  await preparer.getByLabel('Vendor').selectOption(VENDOR);
  await preparer.getByLabel('Business day').fill(day(2));
  await preparer.getByRole('button', { name: 'Propose' }).click();
  await preparer.getByRole('button', { name: 'Submit' }).first().click();
  await expect(preparer.getByRole('button', { name: 'Approve' }).first()).toBeVisible();
  // The preparer's own approval is refused by the server.
  await preparer.getByRole('button', { name: 'Approve' }).first().click();
  await expect(preparer.getByRole('alert')).toBeVisible();

  const approver = await asUser(browser, 'demo-approver');
  await openHydrated(approver, '/close');
  await approver.getByLabel('Vendor').selectOption(VENDOR);
  await approver.getByLabel('Business day').fill(day(2));
  await approver.getByRole('button', { name: 'Approve' }).first().click();
  await expect(approver.getByRole('button', { name: 'Post' }).first()).toBeVisible();
  await shoot(approver, 'daily-close');
});

test('support sees no actions and the server refuses them', async ({ browser }) => {
  const page = await asUser(browser, 'demo-support');
  await openHydrated(page, `/discrepancies?vendor=${VENDOR}`);
  const queue = page.getByTestId('queue');
  await expect(queue.locator('tbody tr[data-class]').first()).toBeVisible();
  for (const name of ['Backfill', 'Retry', 'Refund', 'Sync status', 'Write off']) {
    await expect(queue.getByRole('button', { name, exact: true })).toHaveCount(0);
  }
  const id = Number(await queue.locator('tbody tr[data-class]').first().getAttribute('data-id'));
  const origin = test.info().project.use.baseURL!;
  const direct = await page.request.post('/api/act_on_discrepancies', {
    data: { ids: [id], action: 'backfill', reason: '' },
    headers: { 'Content-Type': 'application/json', Origin: origin },
  });
  expect(direct.status()).toBe(403);
  expect(await direct.text()).toContain('your role does not allow this');
});

test('every page renders for its role, with a screenshot of each', async ({ browser }) => {
  const admin = await asUser(browser, 'demo-admin');
  for (const [where, name] of [['/orders', 'orders'], ['/imports', 'imports'], ['/vendors', 'vendors'], ['/audit', 'audit-log'], ['/users', 'users']]) {
    await openHydrated(admin, where);
    await expect(admin.getByRole('heading', { level: 1 })).toBeVisible();
    await expect(admin.getByRole('alert')).toHaveCount(0);
    await shoot(admin, name);
  }
});
