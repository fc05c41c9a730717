import { AUDIT_EVENTS_SHOWN, JOBS_SHOWN } from './status-data.js';

/**
 * The page's content security policy: everything the page loads comes from this server, and
 * nothing inline runs (the shell below has no inline script or style).
 */
export const STATUS_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The page's shell: src/api/status-page/status.js fills it from /status/data. */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>dualwrite status</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/status/assets/uPlot.min.css">
<link rel="stylesheet" href="/status/assets/status.css">
<script src="/status/assets/uPlot.iife.min.js" defer></script>
<script src="/status/assets/status.js" defer></script>
</head>
<body>
<header>
  <h1>dualwrite <span id="stage" class="stage">…</span></h1>
  <p id="flags" class="flags">loading…</p>
  <p id="problem" class="problem" hidden></p>
</header>
<main>
  <section id="next" aria-labelledby="next-title">
    <h2 id="next-title">Next step</h2>
    <p id="next-verdict"></p>
    <ul id="next-checks" class="checks"></ul>
  </section>
  <section id="now" aria-labelledby="now-title">
    <h2 id="now-title">Now</h2>
    <dl id="now-figures" class="figures"></dl>
  </section>
  <section id="consistency" aria-labelledby="consistency-title">
    <h2 id="consistency-title">Consistency at the last verification</h2>
    <p id="consistency-summary"></p>
    <table>
      <thead><tr><th>store</th><th>entity</th><th>consistency</th><th>persistent differences</th><th>transient</th><th>rows memory</th><th>rows PostgreSQL</th></tr></thead>
      <tbody id="consistency-rows"></tbody>
    </table>
  </section>
  <section id="charts" aria-labelledby="charts-title">
    <h2 id="charts-title">The last hour <small id="charts-note"></small></h2>
    <div class="chart-grid">
      <figure class="chart" id="chart-differences"><figcaption>Persistent differences per entity, by verification</figcaption></figure>
      <figure class="chart" id="chart-outbox"><figcaption>Outbox: depth and oldest entry's age (s)</figcaption></figure>
      <figure class="chart" id="chart-mirror"><figcaption>Mirror queue depth</figcaption></figure>
      <figure class="chart" id="chart-latency"><figcaption>Latency per side: p50, p95, p99 (ms, log scale)</figcaption></figure>
      <figure class="chart" id="chart-errors"><figcaption>Error rate per side (%)</figcaption></figure>
      <figure class="chart" id="chart-reads"><figcaption>Reads per second by the side that answered</figcaption></figure>
    </div>
  </section>
  <section id="jobs" aria-labelledby="jobs-title">
    <h2 id="jobs-title">Background jobs <small>(last ${JOBS_SHOWN} runs)</small></h2>
    <p id="jobs-unavailable" class="problem" hidden></p>
    <table>
      <thead><tr><th>task</th><th>state</th><th>started</th><th>duration</th><th>progress</th><th>result</th></tr></thead>
      <tbody id="jobs-rows"></tbody>
    </table>
  </section>
  <section id="audit" aria-labelledby="audit-title">
    <h2 id="audit-title">Audit trail <small>(last ${AUDIT_EVENTS_SHOWN} events)</small></h2>
    <p id="audit-unavailable" class="problem" hidden></p>
    <table>
      <thead><tr><th>time</th><th>action</th><th>who</th><th>from</th><th>to</th><th>reason</th></tr></thead>
      <tbody id="audit-rows"></tbody>
    </table>
  </section>
</main>
<footer><span id="updated"></span></footer>
</body>
</html>
`;
