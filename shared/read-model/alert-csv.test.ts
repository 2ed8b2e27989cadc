import { alertCsvBatch } from './alert-csv';
import type { AlertItem } from './alert-queries';

const item = (over: Partial<AlertItem> = {}): AlertItem => ({
  id: '00000000-0000-4000-8000-000000000001',
  bot_id: 'btc-bot',
  pair: 'BTC-USD',
  direction: 'down',
  price: '99.5',
  reference_price: '100',
  change_percent: '-0.5',
  threshold_percent: '0.01',
  observed_at: '2026-11-29T12:00:00.000Z',
  received_at: '2026-11-29T12:00:00.100Z',
  config: { botId: 'btc-bot' },
  silenced_by: null,
  ...over,
});

/** The cells of a one-row CSV without quotes in its values: enough for these rows. */
const cells = (csv: string) => csv.trimEnd().split(',');

describe('CSV export when a cell would start a spreadsheet formula', () => {
  it.each(['=HYPERLINK("http://x")', '+1+1', '-1+cmd', '@SUM(A1)', '\tx', '\rx', '\uFF1D1'])('prefixes a quote to text starting %j', (hostile) => {
    const csv = alertCsvBatch([item({ bot_id: hostile })]);
    // The bot_id cell, quoted or not, starts with the escaping quote and then the original text.
    expect(csv.startsWith(`${item().id},'${hostile}`) || csv.startsWith(`${item().id},"'${hostile.replace(/"/g, '""')}"`)).toBe(true);
  });

  it('writes negative decimals as numbers, not as escaped text', () => {
    const [, , , , price, reference, change, threshold] = cells(alertCsvBatch([item({ change_percent: '-0.500000000000000001' })]));
    expect([price, reference, change, threshold]).toEqual(['99.5', '100', '-0.500000000000000001', '0.01']);
  });

  it('escapes a decimal column whose value is not a plain decimal', () => {
    const change = cells(alertCsvBatch([item({ change_percent: '-1+cmd|x' })]))[6];
    expect(change).toBe("'-1+cmd|x");
  });

  it('leaves ordinary text alone', () => {
    expect(cells(alertCsvBatch([item()])).slice(0, 4)).toEqual(['00000000-0000-4000-8000-000000000001', 'btc-bot', 'BTC-USD', 'down']);
  });
});
