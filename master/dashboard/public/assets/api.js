// Talks to the master's HTTP API. When API_TOKEN is set the API answers 401; the page then asks for the token once,
// keeps it in sessionStorage (this tab only) and sends it as a Bearer token. EventSource cannot set headers, so the live
// stream is opened with a ticket instead: POST /events/ticket (with the token) returns one, good for one connection
// within a minute. The token itself never goes into a URL.

const TOKEN_KEY = 'tickwatch.apiToken';

/** Error with the HTTP status and the API's explanation (its 400 bodies name the parameter). */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

/**
 * @param {{ askForToken: (reason: string) => Promise<string> }} deps  shows the token form; resolves with what was typed
 */
export function createApiClient(deps) {
  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  // Many requests may hit 401 at once; they all wait for the same answer.
  let pendingToken = null;

  function authHeaders() {
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  function requestToken(reason) {
    pendingToken ??= deps.askForToken(reason).then((typed) => {
      token = typed;
      sessionStorage.setItem(TOKEN_KEY, typed);
      pendingToken = null;
      return typed;
    });
    return pendingToken;
  }

  /** Builds `path?query`, dropping empty values and repeating arrays. */
  function url(path, params = {}) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value === undefined || value === null || value === '') continue;
      for (const v of Array.isArray(value) ? value : [value]) search.append(key, String(v));
    }
    const qs = search.toString();
    return qs ? `${path}?${qs}` : path;
  }

  async function request(path, params, accept, method = 'GET', body = undefined) {
    for (let attempt = 0; ; attempt++) {
      const headers = { accept, ...authHeaders(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
      const res = await fetch(url(path, params), { method, headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body) });
      if (res.status === 401 && attempt < 5) {
        await requestToken(token ? 'That token was refused. Try again.' : '');
        continue;
      }
      if (!res.ok) {
        let body = null;
        try {
          body = await res.json();
        } catch {
          /* not JSON: keep the status text */
        }
        const message = body?.message || body?.error || `${res.status} ${res.statusText}`;
        throw new ApiError(res.status, message, body);
      }
      return res;
    }
  }

  return {
    url,
    get hasToken() {
      return token !== '';
    },
    /** GET a JSON resource. */
    async getJson(path, params) {
      const res = await request(path, params, 'application/json');
      return res.json();
    },
    /** POST, PATCH or DELETE with a JSON body; resolves with the JSON answer, or null for 204. Throws ApiError (status, body). */
    async send(method, path, body) {
      const res = await request(path, {}, 'application/json', method, body);
      return res.status === 204 ? null : res.json();
    },
    /** GET a text resource (CSV). */
    async getText(path, params) {
      const res = await request(path, params, 'text/csv');
      return res.text();
    },
    /** URL of the live stream with a fresh one-connection ticket (asks for the token on 401, like every request). */
    async eventsUrl() {
      const res = await request('/events/ticket', {}, 'application/json', 'POST');
      const { ticket } = await res.json();
      return url('/events', { ticket });
    },
    /** Resolves once a token is known (asking for one if none is). */
    requestToken,
  };
}
