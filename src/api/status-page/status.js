// The status page's script (src/api/status-assets.ts serves it as it is: plain browser
// JavaScript, no build step). It fetches /status/data every 5 s and fills the shell; uPlot
// draws the charts. Every figure goes in as text, never as HTML.
'use strict';

(() => {
  const REFRESH_MS = 5000;
  const SIDE_COLORS = { memory: '#2563eb', postgres: '#c2410c', fallback: '#b91c1c' };
  /** Latency lines: a side's hue, light for p50, dark for p99 (the legend shows colours, not dashes). */
  const QUANTILE_COLORS = {
    memory: { p50: '#93c5fd', p95: '#2563eb', p99: '#1e3a8a' },
    postgres: { p50: '#fdba74', p95: '#c2410c', p99: '#7c2d12' },
  };
  /** Axis steps of charts that count things: no tick at 0.5 of a difference. */
  const WHOLE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6];
  const PALETTE = ['#2563eb', '#c2410c', '#047857', '#7c3aed', '#b91c1c', '#0e7490', '#a16207', '#be185d', '#4b5563'];
  /** A linear scale from 0 (counts, rates): at least 0 to 1, so a flat 0 sits at the bottom. */
  const FROM_ZERO = { range: (_plot, _min, max) => [0, Math.max(max ?? 0, 1)] };
  /** Chart id -> { plot, signature }: a chart is made again only when its series change. */
  const charts = new Map();

  const byId = (id) => document.getElementById(id);

  /** An element with text children (strings) or element children. */
  function element(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes ?? {})) node.setAttribute(name, value);
    for (const child of children) node.append(child instanceof Node ? child : String(child));
    return node;
  }

  const pad = (n) => String(n).padStart(2, '0');
  function time(at) {
    const d = new Date(at);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  const stageName = (stage, readPercent) => (stage === 'read-shift' ? `read-shift ${readPercent}%` : stage);
  const percent = (ratio, digits) => `${(ratio * 100).toFixed(digits)}%`;
  const count = (n, singular, plural = `${singular}s`) => `${n} ${n === 1 ? singular : plural}`;

  function showProblem(text) {
    const problem = byId('problem');
    problem.hidden = !text;
    problem.textContent = text ?? '';
  }

  async function refresh() {
    try {
      const response = await fetch('/status/data', { cache: 'no-store', headers: { accept: 'application/json' } });
      if (response.status === 401)
        showProblem('Not signed in, or the token has changed: open /status?token=<token> again.');
      else if (!response.ok)
        showProblem(`GET /status/data answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
      else {
        render(await response.json());
        showProblem(undefined);
      }
    } catch (error) {
      showProblem(
        `The process did not answer (${error.message}); the figures below are from ${byId('updated').textContent || 'nowhere yet'}.`,
      );
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }

  function render(data) {
    renderHeader(data.status);
    renderNextStep(data.nextStep);
    renderNow(data.status);
    renderConsistency(data.status.lastVerification, data.consistency);
    renderCharts(data.history);
    renderJobs(data.jobs);
    renderAudit(data.audit);
    byId('updated').textContent = `updated ${time(data.generatedAt)}, every ${REFRESH_MS / 1000} s`;
    // Tests wait for this: the page has drawn figures from this answer.
    document.documentElement.dataset.renderedAt = data.generatedAt;
  }

  function renderHeader(status) {
    const { stage, flags } = status;
    const stageElement = byId('stage');
    stageElement.textContent = stage.inForce;
    stageElement.className = `stage stage-${stage.inForce}`;
    const parts = [
      `${stage.readPercent}% of keyed reads from PostgreSQL`,
      `flags from ${flags.source}`,
      `epoch ${stage.epoch}`,
    ];
    if (flags.stage !== stage.inForce || flags.readPercent !== stage.readPercent)
      parts.push(`requested: ${stageName(flags.stage, flags.readPercent)} (not in force yet)`);
    if (stage.refused) parts.push(`transition refused: ${stage.refused}`);
    if (flags.refused) parts.push(`flags overridden: ${flags.refused}`);
    byId('flags').textContent = parts.join(' · ');
  }

  function renderNextStep(next) {
    const verdictElement = byId('next-verdict');
    const checks = byId('next-checks');
    if (!next) {
      verdictElement.textContent = 'postgres-only is the last stage: there is no next step.';
      verdictElement.className = '';
      checks.replaceChildren();
      return;
    }
    const { verdict } = next;
    const target = stageName(next.stage, next.readPercent);
    verdictElement.className = verdict.allowed ? 'ok' : 'failed';
    verdictElement.replaceChildren(
      element('strong', {}, target),
      verdict.allowed ? ': the evidence gate would allow it now' : ': the evidence gate would refuse it now',
    );
    if (verdict.checks.length === 0) {
      checks.replaceChildren(
        element('li', { class: 'ok' }, 'no evidence needed: dual-write is where the evidence comes from'),
      );
      return;
    }
    checks.replaceChildren(
      ...verdict.checks.map((check) =>
        element(
          'li',
          { class: check.ok ? 'ok' : 'failed' },
          element('span', { class: 'mark' }, check.ok ? '✓' : '✗'),
          element('strong', {}, check.name),
          ` ${check.detail}`,
        ),
      ),
    );
  }

  function renderNow(status) {
    const figures = [
      [
        'outbox',
        status.outbox.depth === 0
          ? 'empty'
          : `${count(status.outbox.depth, 'entry', 'entries')}, the oldest ${status.outbox.oldestAgeSeconds.toFixed(0)} s old`,
      ],
      ['mirror queue', `${status.mirror.queueDepth} (${status.mirror.mode})`],
      [
        'pool',
        `${status.pool.total} open, ${status.pool.idle} idle, ${status.pool.waiting} waiting, max ${status.pool.max}`,
      ],
    ];
    if (status.rollback)
      figures.push(['rollback', `${status.rollback.safe ? 'safe' : 'not safe'}: ${status.rollback.detail}`]);
    if (status.convergence)
      figures.push(['converged', `${status.convergence.converged ? 'yes' : 'no'}: ${status.convergence.detail}`]);
    byId('now-figures').replaceChildren(
      ...figures.flatMap(([name, value]) => [element('dt', {}, name), element('dd', {}, value)]),
    );
  }

  function renderConsistency(last, entities) {
    byId('consistency-summary').textContent = last
      ? `${time(last.startedAt)}, ${last.seconds.toFixed(2)} s: ${last.consistent ? 'consistent' : count(last.persistentDifferences, 'persistent difference')} (${last.transientDifferences} gone on re-check)`
      : 'No verification has completed in this process yet.';
    byId('consistency-rows').replaceChildren(
      ...entities.map((entity) =>
        element(
          'tr',
          { class: entity.persistentDifferences > 0 ? 'failed' : '', 'data-entity': entity.entity },
          element('td', {}, entity.store),
          element('td', {}, entity.entity),
          element('td', { class: 'number' }, percent(entity.consistencyRatio, 2)),
          element('td', { class: 'number' }, entity.persistentDifferences),
          element('td', { class: 'number' }, entity.transientDifferences),
          element('td', { class: 'number' }, entity.rowsMemory),
          element('td', { class: 'number' }, entity.rowsPostgres),
        ),
      ),
    );
  }

  function renderCharts(history) {
    const samples = history.samples;
    const xs = samples.map((sample) => sample.at / 1000);
    const column = (pick) => samples.map((sample) => pick(sample) ?? null);
    byId('charts-note').textContent =
      samples.length === 0
        ? `(the first sample comes ${history.intervalMs / 1000} s after the start)`
        : `(a sample every ${history.intervalMs / 1000} s)`;

    // The total, and each entity that differed at least once: a line per entity at 0 says nothing.
    const verifications = history.verifications;
    const differing = [
      ...new Set(
        verifications.flatMap((point) =>
          Object.keys(point.differences).filter((entity) => point.differences[entity] > 0),
        ),
      ),
    ].sort();
    const total = (point) => Object.values(point.differences).reduce((sum, n) => sum + n, 0);
    drawChart(
      'chart-differences',
      verifications.map((point) => point.at / 1000),
      [
        { label: 'all entities', color: '#4b5563', dash: [6, 4], values: verifications.map(total) },
        ...differing.map((entity, index) => ({
          label: entity,
          color: PALETTE[index % PALETTE.length],
          values: verifications.map((point) => point.differences[entity] ?? null),
        })),
      ],
      { points: true, whole: true },
    );

    drawChart(
      'chart-outbox',
      xs,
      [
        { label: 'depth', color: '#2563eb', values: column((sample) => sample.outbox.depth) },
        {
          label: 'oldest age (s)',
          color: '#b91c1c',
          values: column((sample) => sample.outbox.oldestAgeSeconds),
          scale: 's',
        },
      ],
      { whole: true },
    );
    drawChart(
      'chart-mirror',
      xs,
      [{ label: 'queued', color: '#047857', values: column((sample) => sample.mirrorQueueDepth) }],
      { whole: true },
    );

    const sides = ['memory', 'postgres'];
    drawChart(
      'chart-latency',
      xs,
      sides.flatMap((side) => [
        {
          label: `${side} p50`,
          color: QUANTILE_COLORS[side].p50,
          values: column((sample) => sample.sides[side].p50Ms),
        },
        {
          label: `${side} p95`,
          color: QUANTILE_COLORS[side].p95,
          values: column((sample) => sample.sides[side].p95Ms),
        },
        {
          label: `${side} p99`,
          color: QUANTILE_COLORS[side].p99,
          values: column((sample) => sample.sides[side].p99Ms),
        },
      ]),
      { log: true },
    );
    drawChart(
      'chart-errors',
      xs,
      sides.map((side) => ({
        label: side,
        color: SIDE_COLORS[side],
        values: column((sample) => (sample.sides[side].errorRate === null ? null : sample.sides[side].errorRate * 100)),
      })),
    );
    drawChart(
      'chart-reads',
      xs,
      ['memory', 'postgres', 'fallback'].map((source) => ({
        label: source,
        color: SIDE_COLORS[source],
        values: column((sample) => sample.readsPerSecond[source]),
      })),
    );
  }

  /**
   * Draws (or updates) the chart in figure `id`: one line per series over times `xs` (in s).
   * `series[].scale` puts a series on a second y axis; `options.log` makes y logarithmic,
   * `options.whole` ticks y at whole numbers (counts), `options.points` marks every point
   * (for sparse data such as verifications).
   */
  function drawChart(id, xs, series, options = {}) {
    const figure = byId(id);
    const width = Math.max(figure.clientWidth - 2, 280);
    const signature = series.map((s) => s.label).join('\n');
    let chart = charts.get(id);
    if (!chart || chart.signature !== signature) {
      chart?.plot.destroy();
      const secondScale = series.find((s) => s.scale)?.scale;
      const plot = new uPlot(
        {
          width,
          height: 220,
          cursor: { drag: { x: false, y: false } },
          // Labels only: values under the cursor would read "--" in a screenshot and on a glance.
          legend: { live: false },
          scales: {
            x: { time: true },
            y: options.log ? { distr: 3 } : FROM_ZERO,
            ...(secondScale ? { [secondScale]: FROM_ZERO } : {}),
          },
          axes: [
            {},
            { size: 60, ...(options.whole ? { incrs: WHOLE_STEPS } : {}) },
            ...(secondScale ? [{ scale: secondScale, side: 1, size: 50, grid: { show: false } }] : []),
          ],
          series: [
            {},
            ...series.map((s) => ({
              label: s.label,
              stroke: s.color,
              width: 2,
              dash: s.dash,
              scale: s.scale ?? 'y',
              // A gap is an interval without calls: left open, with a lone figure drawn as a dot.
              spanGaps: false,
              points: { show: true, size: options.points ? 7 : 5, filter: options.points ? null : isolatedPoints },
            })),
          ],
        },
        [xs, ...series.map((s) => s.values)],
        figure,
      );
      chart = { plot, signature };
      charts.set(id, chart);
    } else {
      chart.plot.setData([xs, ...series.map((s) => s.values)]);
      if (chart.plot.width !== width) chart.plot.setSize({ width, height: 220 });
    }
    figure.dataset.points = String(xs.length);
    figure.classList.toggle('empty', xs.length === 0 || series.length === 0);
  }

  /** Indices of the figures with no figure on either side: a line cannot show them. */
  function isolatedPoints(plot, seriesIndex) {
    const values = plot.data[seriesIndex];
    return values.flatMap((value, index) =>
      value != null && values[index - 1] == null && values[index + 1] == null ? [index] : [],
    );
  }

  const seconds = (ms) => (ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);

  function renderJobs(jobs) {
    const unavailable = byId('jobs-unavailable');
    unavailable.hidden = !jobs.unavailable;
    unavailable.textContent = jobs.unavailable ?? '';
    const failed = new Set(['failure', 'timeout', 'interrupted']);
    byId('jobs-rows').replaceChildren(
      ...jobs.executions.map((run) =>
        element(
          'tr',
          { class: failed.has(run.state) ? 'failed' : '', 'data-task': run.task, 'data-state': run.state },
          element('td', {}, run.trigger === 'manual' ? `${run.task} (manual)` : run.task),
          element('td', {}, run.state),
          element('td', { class: 'nowrap' }, run.startedAt ? time(run.startedAt) : ''),
          element('td', { class: 'number' }, seconds(run.durationMs)),
          element('td', { class: 'number' }, `${run.progress}%`),
          element('td', {}, run.resultTruncated ? `${run.summary} (cut at 64 KB)` : run.summary),
        ),
      ),
    );
    if (jobs.executions.length === 0 && !jobs.unavailable)
      byId('jobs-rows').replaceChildren(element('tr', {}, element('td', { colspan: '6' }, 'No runs yet.')));
  }

  function renderAudit(audit) {
    const unavailable = byId('audit-unavailable');
    unavailable.hidden = !audit.unavailable;
    unavailable.textContent = audit.unavailable ?? '';
    byId('audit-rows').replaceChildren(
      ...audit.events.map((event) =>
        element(
          'tr',
          { class: event.action === 'stage.forced' ? 'failed' : '' },
          element('td', { class: 'nowrap' }, time(event.occurredAt)),
          element('td', {}, event.action),
          element('td', {}, event.who),
          element('td', {}, event.from ?? ''),
          element('td', {}, event.to ?? ''),
          element('td', {}, event.reason ?? ''),
        ),
      ),
    );
    if (audit.events.length === 0 && !audit.unavailable)
      byId('audit-rows').replaceChildren(element('tr', {}, element('td', { colspan: '6' }, 'No events yet.')));
  }

  window.addEventListener('resize', () => {
    for (const [id, chart] of charts)
      chart.plot.setSize({ width: Math.max(byId(id).clientWidth - 2, 280), height: 220 });
  });
  void refresh();
})();
