import fc from 'fast-check';
import { Decimal } from '../shared/contract/decimal';
import { decide, type Quote } from './detector';
import { carryOver, DEFAULT_RULE_SETTINGS, evaluate, finishedReason, INITIAL_RULE_STATE, windowMove, type RuleOutcome, type RuleSettings, type RuleState } from './rules';

const settings = (over: Partial<RuleSettings> = {}): RuleSettings => ({ thresholdPercent: '1', priceField: 'ask', referenceMode: 'last-alert', ...DEFAULT_RULE_SETTINGS, ...over });
const q = (ask: unknown, bid: unknown = ask): Quote => ({ ask, bid });
const INVALID = q('not a price');

/** Runs a scripted series; each step is `[at, ask]` (ask may be invalid). Returns every outcome and the last state. */
function run(rule: RuleSettings, steps: readonly (readonly [number, unknown])[], state: RuleState = INITIAL_RULE_STATE) {
  const outcomes: RuleOutcome[] = [];
  for (const [at, ask] of steps) {
    const e = evaluate(state, q(ask), at, rule);
    outcomes.push(e.outcome);
    state = e.state;
  }
  return { outcomes, state };
}
/** `kind`, and for moves `direction price vs reference`. */
const brief = (o: RuleOutcome): string =>
  'direction' in o ? `${o.kind} ${o.direction} ${o.price} vs ${o.referencePrice}` : o.kind === 'finished' ? `finished ${o.reason}` : o.kind;
const series = (prices: readonly unknown[], step = 1000) => prices.map((p, i) => [i * step, p] as const);

describe('rules', () => {
  describe('with the default settings (rule reference)', () => {
    it('alerts exactly as the detector does, on any series (today behaviour unchanged)', () => {
      const price = fc.integer({ min: 9_900, max: 10_100 }).map((n) => (n / 100).toFixed(2));
      fc.assert(
        fc.property(fc.array(fc.oneof(price, fc.constant('-1')), { maxLength: 60 }), fc.constantFrom('first', 'last-alert' as const), fc.constantFrom('0.01', '0.5', '1'), (prices, mode, threshold) => {
          const rule = settings({ referenceMode: mode as 'first' | 'last-alert', thresholdPercent: threshold });
          let reference: string | null = null;
          let state = INITIAL_RULE_STATE;
          prices.forEach((p, i) => {
            const d = decide(reference, q(p), rule);
            reference = d.nextReference;
            const e = evaluate(state, q(p), i * 1000, rule);
            state = e.state;
            expect(e.outcome.kind).toBe(d.kind);
            if (d.kind === 'alert') expect(e.outcome).toEqual({ kind: 'alert', price: d.price, referencePrice: d.referencePrice, direction: d.direction, changePercent: d.changePercent });
            expect(state.reference).toBe(reference);
          });
        }),
      );
    });
  });

  describe('rule window', () => {
    const w = (over: Partial<RuleSettings> = {}) => settings({ rule: 'window', windowMs: 10_000, ...over });

    it('alerts up at exactly threshold x lo and restarts the window at the alerted price', () => {
      // 100.99 is 0.99 % above lo 100 (quiet), 101 exactly 1 %; then hi is 101: 100 is 0.990.. % below (quiet), 99.99 exactly 1 %.
      const { outcomes } = run(w(), series(['100', '100.99', '101', '100', '99.99']));
      expect(outcomes.map(brief)).toEqual(['quiet', 'quiet', 'alert up 101 vs 100', 'quiet', 'alert down 99.99 vs 101']);
      expect(outcomes[2]).toMatchObject({ changePercent: '1.000000000000000000' });
      expect(outcomes[4]).toMatchObject({ changePercent: '-1.000000000000000000' });
    });

    it('counts a price observed exactly windowMs ago, and not one a millisecond older', () => {
      expect(run(w({ windowMs: 1000 }), [[0, '100'], [1000, '101']]).outcomes.map(brief)).toEqual(['quiet', 'alert up 101 vs 100']);
      expect(run(w({ windowMs: 1000 }), [[0, '100'], [1001, '101']]).outcomes.map(brief)).toEqual(['quiet', 'quiet']);
    });

    it('takes lo and hi over the whole window, not the last price', () => {
      // A slow climb: no step reaches 1 %, the climb from the window's low does.
      const { outcomes } = run(w(), series(['100', '100.4', '100.8', '101.2']));
      expect(outcomes.map(brief)).toEqual(['quiet', 'quiet', 'quiet', 'alert up 101.2 vs 100']);
    });

    it('forgets a low that left the window', () => {
      const { outcomes } = run(w({ windowMs: 2000 }), series(['100', '100.4', '100.8', '101.2']));
      // At 3000 the window holds 100.4 (1000), 100.8, 101.2: 0.796.. % from lo 100.4.
      expect(outcomes.map(brief)).toEqual(['quiet', 'quiet', 'quiet', 'quiet']);
    });

    it('when both directions hold, the larger absolute change wins, and a tie is up', () => {
      expect(windowMove(new Decimal('101'), '100', '102', '0.5')).toMatchObject({ direction: 'up', referencePrice: '100', changePercent: '1.000000000000000000' });
      expect(windowMove(new Decimal('100.5'), '100', '102', '0.5')).toMatchObject({ direction: 'down', referencePrice: '102', changePercent: '-1.470588235294117647' });
      expect(windowMove(new Decimal('101.5'), '100', '102', '0.1')).toMatchObject({ direction: 'up', referencePrice: '100' });
      // Through the evaluator: a pending period keeps 100 and 102 in one window.
      const { outcomes } = run(w({ thresholdPercent: '0.5', pendingPolls: 2 }), series(['100', '102', '101']));
      expect(outcomes.map(brief)).toEqual(['quiet', 'pending up 102 vs 100', 'alert up 101 vs 100']);
    });

    it('after an alert measures against the alerted price only', () => {
      const { outcomes, state } = run(w(), series(['100', '101', '100.5']));
      expect(outcomes.map(brief)).toEqual(['quiet', 'alert up 101 vs 100', 'quiet']);
      expect(state.lows.map((x) => x.price)).toEqual(['100.5']);
      expect(state.highs.map((x) => x.price)).toEqual(['101', '100.5']);
    });
  });

  describe('pending_polls', () => {
    it('alerts on the k-th consecutive poll, carrying that poll price', () => {
      const { outcomes } = run(settings({ pendingPolls: 3 }), series(['100', '101', '101.2', '101.5']));
      expect(outcomes.map(brief)).toEqual(['reference-set', 'pending up 101 vs 100', 'pending up 101.2 vs 100', 'alert up 101.5 vs 100']);
    });
    it('starts again after a quiet poll', () => {
      const { outcomes } = run(settings({ pendingPolls: 2 }), series(['100', '101', '100.5', '101', '101']));
      expect(outcomes.map(brief)).toEqual(['reference-set', 'pending up 101 vs 100', 'quiet', 'pending up 101 vs 100', 'alert up 101 vs 100']);
    });
    it('starts again when the direction turns', () => {
      const { outcomes } = run(settings({ pendingPolls: 2 }), series(['100', '101', '99', '99']));
      expect(outcomes.map(brief)).toEqual(['reference-set', 'pending up 101 vs 100', 'pending down 99 vs 100', 'alert down 99 vs 100']);
    });
    it('is neither counted nor broken by an invalid answer', () => {
      const { outcomes } = run(settings({ pendingPolls: 3 }), series(['100', '101', '-1', '0', '101', '101']));
      expect(outcomes.map(brief)).toEqual(['reference-set', 'pending up 101 vs 100', 'invalid', 'invalid', 'pending up 101 vs 100', 'alert up 101 vs 100']);
    });
    it('with 1 alerts at once (the default)', () => {
      expect(run(settings(), series(['100', '101'])).outcomes.map(brief)).toEqual(['reference-set', 'alert up 101 vs 100']);
    });
  });

  describe('cooldown_ms', () => {
    const c = settings({ cooldownMs: 10_000 });
    it('suppresses the same direction until exactly last + cooldown, counts it, and keeps the reference (last-alert)', () => {
      const { outcomes, state } = run(c, [[0, '100'], [1000, '101'], [2000, '102.01'], [10_999, '102.01'], [11_000, '102.01']]);
      expect(outcomes.map(brief)).toEqual(['reference-set', 'alert up 101 vs 100', 'suppressed up 102.01 vs 101', 'suppressed up 102.01 vs 101', 'alert up 102.01 vs 101']);
      expect(outcomes[2]).toMatchObject({ cooldownUntil: 11_000 });
      expect(state).toMatchObject({ suppressed: 2, alertsPublished: 2, reference: '102.01', lastAlertAt: { up: 11_000, down: null } });
    });
    it('holds per direction: a fall alerts during an up cooldown', () => {
      const { outcomes } = run(c, [[0, '100'], [1000, '101'], [2000, '99.99']]);
      expect(outcomes.map(brief)).toEqual(['reference-set', 'alert up 101 vs 100', 'alert down 99.99 vs 101']);
    });
    it('with a pending period starts the streak again after a suppressed alert', () => {
      const { outcomes } = run(settings({ cooldownMs: 10_000, pendingPolls: 2, referenceMode: 'first' }), series(['100', '101', '101', '101', '101', '101']));
      expect(outcomes.map(brief)).toEqual(['reference-set', 'pending up 101 vs 100', 'alert up 101 vs 100', 'pending up 101 vs 100', 'suppressed up 101 vs 100', 'pending up 101 vs 100']);
    });
    it('in the window rule does not restart the window on a suppressed alert', () => {
      const { outcomes } = run(settings({ rule: 'window', windowMs: 60_000, cooldownMs: 5000 }), series(['100', '101', '102.5', '103'], 2000));
      // 101 alerts (window restarts at 101); 102.5 is 1.48 % up from 101 at 4000 < 2000 + 5000: suppressed; 103 at 6000 too.
      expect(outcomes.map(brief)).toEqual(['quiet', 'alert up 101 vs 100', 'suppressed up 102.5 vs 101', 'suppressed up 103 vs 101']);
    });
  });

  describe('max_alerts and expires_at', () => {
    it('max_alerts 1: the first alert says it used the limit up; afterwards the bot is exhausted, even on invalid answers', () => {
      const { outcomes, state } = run(settings({ maxAlerts: 1 }), series(['100', '101', '103', '-1']));
      expect(outcomes.map(brief)).toEqual(['reference-set', 'alert up 101 vs 100', 'finished exhausted', 'finished exhausted']);
      expect(outcomes[1]).toMatchObject({ finished: 'exhausted' });
      expect(state.alertsPublished).toBe(1);
    });
    it('max_alerts 2 allows two alerts; suppressed ones do not count', () => {
      const { outcomes } = run(settings({ maxAlerts: 2, cooldownMs: 1500 }), series(['100', '101', '102.1', '103.2', '104.3']));
      expect(outcomes.map(brief)).toEqual(['reference-set', 'alert up 101 vs 100', 'suppressed up 102.1 vs 101', 'alert up 103.2 vs 101', 'finished exhausted']);
      expect(outcomes[1]).not.toHaveProperty('finished');
    });
    it('a count restored after a restart is honoured at once', () => {
      expect(run(settings({ maxAlerts: 3 }), series(['100']), { ...INITIAL_RULE_STATE, alertsPublished: 3 }).outcomes.map(brief)).toEqual(['finished exhausted']);
    });
    it('expires_at: alerts until a millisecond before, and is expired from exactly then', () => {
      const e = settings({ expiresAt: 3000 });
      expect(run(e, [[0, '100'], [2999, '101']]).outcomes.map(brief)).toEqual(['reference-set', 'alert up 101 vs 100']);
      expect(run(e, [[0, '100'], [3000, '101']]).outcomes.map(brief)).toEqual(['reference-set', 'finished expired']);
      expect(finishedReason(INITIAL_RULE_STATE, e, 2999)).toBeNull();
      expect(finishedReason(INITIAL_RULE_STATE, e, 3000)).toBe('expired');
    });
  });

  describe('invalid answers', () => {
    it('never count as prices: no window entry, no reference, the state unchanged', () => {
      for (const rule of [settings(), settings({ rule: 'window', windowMs: 5000 })]) {
        let state = run(rule, [[0, '100']]).state;
        for (const bad of [q('0'), q('-1'), q('1e3'), q(100), q('100', 'x'), q(undefined), INVALID]) {
          const e = evaluate(state, bad, 1000, rule);
          expect(e.outcome.kind).toBe('invalid');
          expect(e.state).toBe(state);
          state = e.state;
        }
        expect(run(rule, [[2000, '100.5']], state).outcomes.map(brief)).toEqual(['quiet']);
      }
    });
    it('on the window rule, a broken answer never becomes lo or hi', () => {
      const { outcomes, state } = run(settings({ rule: 'window', windowMs: 5000 }), series(['100', '-5', '0', '100.5']));
      expect(outcomes.map(brief)).toEqual(['quiet', 'invalid', 'invalid', 'quiet']);
      expect(state.lows.map((x) => x.price)).toEqual(['100', '100.5']);
    });
  });

  describe('a settings change', () => {
    it('keeps the count and cooldown times; a new rule or price field starts the rule afresh', () => {
      const before = settings();
      const { state } = run(before, series(['100', '101']));
      expect(carryOver(state, before, settings({ thresholdPercent: '2' }))).toBe(state);
      const fresh = carryOver(state, before, settings({ rule: 'window', windowMs: 1000 }));
      expect(fresh).toMatchObject({ reference: null, lows: [], highs: [], pending: null, alertsPublished: 1, lastAlertAt: { up: 1000 } });
      expect(carryOver(state, before, settings({ priceField: 'bid' })).reference).toBeNull();
    });
  });

  describe('the window rule against a brute-force reference', () => {
    /** The rule as written: the whole window rescanned at every poll. */
    function bruteForce(rule: RuleSettings, steps: readonly (readonly [number, string])[]): string[] {
      let points: { at: number; p: Decimal }[] = [];
      let streak: { dir: 'up' | 'down'; count: number } | null = null;
      const last: Record<'up' | 'down', number | null> = { up: null, down: null };
      const th = new Decimal(rule.thresholdPercent);
      return steps.map(([at, text]) => {
        const p = new Decimal(text);
        points.push({ at, p });
        const inWindow = points.filter((x) => x.at >= at - rule.windowMs!);
        const lo = Decimal.min(...inWindow.map((x) => x.p));
        const hi = Decimal.max(...inWindow.map((x) => x.p));
        const up = p.minus(lo).times(100).gte(th.times(lo));
        const down = hi.minus(p).times(100).gte(th.times(hi));
        if (!up && !down) {
          streak = null;
          return 'quiet';
        }
        const dir = up && (!down || p.minus(lo).gte(hi.minus(p))) ? 'up' : 'down';
        const ref = dir === 'up' ? lo : hi;
        const count: number = streak?.dir === dir ? streak.count + 1 : 1;
        if (count < rule.pendingPolls) {
          streak = { dir, count };
          return `pending ${dir} ${p.toFixed()} vs ${ref.toFixed()}`;
        }
        streak = null;
        const lastAt = last[dir];
        if (rule.cooldownMs > 0 && lastAt !== null && at < lastAt + rule.cooldownMs) return `suppressed ${dir} ${p.toFixed()} vs ${ref.toFixed()}`;
        last[dir] = at;
        points = [{ at, p }];
        return `alert ${dir} ${p.toFixed()} vs ${ref.toFixed()}`;
      });
    }

    it('agrees on every random price series', () => {
      const price = fc.integer({ min: 1, max: 400 }).map((n) => (95 + n / 40).toFixed(3).replace(/\.?0+$/, ''));
      const steps = fc.array(fc.tuple(fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.constantFrom(250, 500, 1000)), price), { minLength: 1, maxLength: 80 }).map((raw) => {
        let at = 1_000_000;
        return raw.map(([gap, p]) => [(at += gap), p] as const);
      });
      const rule = fc.record({
        // Round windows and gaps make prices land exactly on the window's edge.
        windowMs: fc.oneof(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom(500, 1000, 2500, 5000)),
        thresholdPercent: fc.constantFrom('0.01', '0.3', '1', '2.5'),
        pendingPolls: fc.integer({ min: 1, max: 4 }),
        cooldownMs: fc.constantFrom(0, 0, 1, 2500, 10_000),
      });
      fc.assert(
        fc.property(steps, rule, (s, r) => {
          const rs = settings({ rule: 'window', ...r });
          expect(run(rs, s).outcomes.map(brief)).toEqual(bruteForce(rs, s));
        }),
        { numRuns: 300 },
      );
    });
  });
});
