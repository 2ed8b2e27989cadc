import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { makeAlert } from '../../test/helpers/alerts';
import { COPY_MIN_ROWS, createAlertRepository } from './alert-repository';

describe('alert repository', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t?.drop());

  it('stores every field of a batch exactly and returns the ids it inserted', async () => {
    const repo = createAlertRepository(t.db);
    const alerts = [makeAlert({ pair: 'ETH-USD', price: '999999999999.123456789012345678' }), makeAlert()];
    const inserted = await repo.insertMany(alerts);
    expect(inserted.sort()).toEqual(alerts.map((a) => a.id).sort());

    const stored = await repo.findByIds([alerts[0]!.id]);
    expect(stored).toHaveLength(1);
    const [row] = stored;
    const a = alerts[0]!;
    expect(row).toMatchObject({ id: a.id, botId: a.botId, pair: 'ETH-USD', direction: a.direction, config: a.config });
    expect(row!.price).toBe('999999999999.123456789012345678');
    expect(row!.changePercent).toBe(a.changePercent);
    expect(row!.observedAt.toISOString()).toBe(a.observedAt);
    expect(row!.receivedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
  });

  it('stores values holding backslashes, quotes, tabs and newlines exactly (the COPY text escaping)', async () => {
    const repo = createAlertRepository(t.db);
    const awkward = 'http://sim.local/a\\b"c\td\ne\rf\\N';
    const alert = makeAlert({ config: { tickerBaseUrl: awkward } });
    const burst = [alert, ...Array.from({ length: COPY_MIN_ROWS }, () => makeAlert())];
    expect((await repo.insertMany(burst)).sort()).toEqual(burst.map((a) => a.id).sort());
    const [row] = await repo.findByIds([alert.id]);
    expect(row!.config.tickerBaseUrl).toBe(awkward);
    expect(row!.config).toEqual(alert.config);
  });

  it('ignores alerts whose id is already stored and reports only the new ones', async () => {
    const repo = createAlertRepository(t.db);
    const old = makeAlert();
    await repo.insertMany([old]);
    const fresh = makeAlert();
    const inserted = await repo.insertMany([old, fresh, { ...fresh }]);
    expect(inserted).toEqual([fresh.id]);
    const count = await t.db('alerts').whereIn('id', [old.id, fresh.id]).count<{ count: string }[]>('* as count');
    expect(Number(count[0]!.count)).toBe(2);
  });

  it('in a burst too (the COPY path), ignores stored ids, keeps every field, and refuses out-of-range values whole', async () => {
    const repo = createAlertRepository(t.db);
    const old = makeAlert();
    await repo.insertMany([old]);
    const burst = Array.from({ length: COPY_MIN_ROWS }, () => makeAlert({ price: '999999999999.123456789012345678' }));
    const inserted = await repo.insertMany([old, ...burst, { ...burst[0]! }]);
    expect(inserted.sort()).toEqual(burst.map((a) => a.id).sort());
    const [row] = await repo.findByIds([burst[3]!.id]);
    expect(row).toMatchObject({ id: burst[3]!.id, botId: burst[3]!.botId, pair: burst[3]!.pair, direction: burst[3]!.direction, price: '999999999999.123456789012345678', config: burst[3]!.config });
    expect(row!.observedAt.toISOString()).toBe(burst[3]!.observedAt);

    const more = Array.from({ length: COPY_MIN_ROWS }, () => makeAlert());
    const tooBig = makeAlert({ price: '123456789012345678901234.5' });
    await expect(t.db.transaction((trx) => repo.insertMany([...more, tooBig], trx))).rejects.toMatchObject({ code: '22003' });
    expect(await repo.findByIds(more.map((a) => a.id))).toEqual([]);
  });

  it('inserts nothing when a row breaks a constraint inside the transaction', async () => {
    const repo = createAlertRepository(t.db);
    const good = makeAlert();
    const tooBig = makeAlert({ price: '123456789012345678901234.5' });
    await expect(t.db.transaction((trx) => repo.insertMany([good, tooBig], trx))).rejects.toMatchObject({ code: '22003' });
    expect(await repo.findByIds([good.id])).toEqual([]);
  });
});
