// The locale the dashboard formats dates and numbers with. Browsers report whatever their environment says, and some
// report a tag Intl rejects with a RangeError (Chromium under LANG=C.UTF-8: `en-US@posix`): such a tag is repaired when
// it can be (the POSIX `@modifier` and `.charset` dropped, `_` read as `-`), else skipped, and en-US is the last resort.
// Loaded as the page's first script, before uPlot, which reads navigator.language once when it loads.

/** Used when none of the browser's languages is a valid BCP 47 tag. */
export const FALLBACK_LOCALE = 'en-US';

/** The canonical form of `tag` when Intl accepts it, else undefined. */
export function canonicalLocale(tag) {
  if (typeof tag !== 'string' || tag === '') return undefined;
  try {
    return Intl.getCanonicalLocales(tag)[0];
  } catch {
    return undefined;
  }
}

/** The first of `candidates` that is (or repairs to) a valid tag; FALLBACK_LOCALE when none is. */
export function chooseLocale(candidates) {
  for (const tag of candidates) {
    const valid = canonicalLocale(tag) ?? (typeof tag === 'string' ? canonicalLocale(tag.split(/[@.]/)[0].replace(/_/g, '-')) : undefined);
    if (valid) return valid;
  }
  return FALLBACK_LOCALE;
}

export const DISPLAY_LOCALE = chooseLocale([...(navigator.languages ?? []), navigator.language]);

// uPlot builds `new Intl.NumberFormat(navigator.language)` when it loads; an invalid tag throws there and leaves no
// uPlot at all. The page shows it the chosen locale instead.
if (canonicalLocale(navigator.language) === undefined) {
  Object.defineProperty(navigator, 'language', { configurable: true, get: () => DISPLAY_LOCALE });
  Object.defineProperty(navigator, 'languages', { configurable: true, get: () => Object.freeze([DISPLAY_LOCALE]) });
}
