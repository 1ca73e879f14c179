/**
 * Tower's pages for people: a graph, and a job with its runs and its log's
 * end. They are what check runs link to (`details_url`). Every value goes
 * through Hono's `html`, which escapes it: labels, logs and reasons come
 * from repositories and minions, never trusted as markup. A private
 * repository's pages need read access (src/web/guards.ts).
 */
import type { Context } from 'hono';
import { Hono } from 'hono';
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { AppEnv } from './env.js';
import { CSRF_FIELD, readsGraph, readsJob, viewerOf } from './guards.js';
import { idParam } from './requests.js';

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

const STYLE = raw(`
  body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1f2328; }
  h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #d0d7de; }
  code, pre { font: 13px ui-monospace, monospace; } pre { background: #f6f8fa; padding: 1rem; overflow: auto; white-space: pre-wrap; }
  .success { color: #1a7f37; } .failure, .exception, .timed-out { color: #cf222e; } .cancelled, .skipped { color: #656d76; }
  nav a { margin-right: 1rem; }
  .account { float: right; } .account form { display: inline; }
`);

/** Who is signed in, with a way out; or a way in, when signing in is configured. */
async function account(c: Context<AppEnv>): Promise<Html> {
  const viewer = await viewerOf(c);
  if (viewer.kind === 'person') {
    return html`<div class="account">
      ${viewer.session.login} ·
      <form method="post" action="/logout">
        <input type="hidden" name="${CSRF_FIELD}" value="${viewer.session.csrf}" />
        <button type="submit">Sign out</button>
      </form>
    </div>`;
  }
  if (!c.var.tower.access.signInEnabled) return html``;
  const next = new URL(c.req.url).pathname;
  return html`<div class="account">
    <a href="/login?next=${encodeURIComponent(next)}">Sign in with GitHub</a>
  </div>`;
}

function layout(title: string, body: Html, accountBar: Html) {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · Tower</title>
        <style>
          ${STYLE}
        </style>
      </head>
      <body>
        ${accountBar} ${body}
      </body>
    </html>`;
}

const when = (date: Date | null) => (date ? new Date(date).toISOString() : '');
const outcome = (state: string, result: string | null) =>
  html`<span class="${result ?? ''}">${result ?? state}</span>`;

export const pageRoutes = new Hono<AppEnv>()
  .use('/graphs/:id', readsGraph)
  .use('/jobs/:id', readsJob)
  .get('/graphs/:id', async (c) => {
    const id = idParam(c, 'id');
    const page = await c.var.tower.reads.graph(id);
    const { graph, counts } = page;
    const rows = page.jobs.map(
      (job) =>
        html`<tr>
          <td><a href="/jobs/${job.id}">${job.label}</a></td>
          <td>${job.kind}</td>
          <td>${outcome(job.state, job.result)}</td>
          <td>${job.reason ?? ''}</td>
          <td>${job.runs.length}</td>
        </tr>`,
    );
    return c.html(
      layout(
        `${graph.name} ${graph.sha.slice(0, 12)}`,
        html`<nav><a href="/api/v1/graphs/${graph.id}">JSON</a></nav>
          <h1>Graph ${graph.name} · <code>${graph.sha.slice(0, 12)}</code></h1>
          <p>
            ${outcome(graph.state, graph.result)} · ${counts.jobs} jobs ·
            ${Object.entries(counts.results)
              .map(([result, n]) => `${n} ${result}`)
              .join(', ')}
            · created ${when(graph.createdAt)}
          </p>
          <table>
            <tr>
              <th>job</th>
              <th>kind</th>
              <th>state</th>
              <th>reason</th>
              <th>runs</th>
            </tr>
            ${rows}
          </table>
          ${
            page.next
              ? html`<p>
                  Showing the first ${page.jobs.length}: the rest are in the JSON, a page at a time.
                </p>`
              : ''
          }`,
        await account(c),
      ),
    );
  })
  .get('/jobs/:id', async (c) => {
    const id = idParam(c, 'id');
    const { graph, job, logTail } = await c.var.tower.reads.job(id);
    const runs = job.runs.map(
      (run) =>
        html`<tr>
          <td>${run.attempt}</td>
          <td>${run.cause}</td>
          <td>${outcome(run.state, run.result)}</td>
          <td>${run.reason ?? ''}</td>
          <td>${run.exitCode ?? ''}</td>
          <td>${run.minionId ?? ''}</td>
          <td>${when(run.startedAt)}</td>
          <td>${when(run.finishedAt)}</td>
          <td>
            <a href="/api/v1/runs/${run.id}/log">log</a> ·
            <a href="/api/v1/runs/${run.id}/manifest">artifacts</a>
          </td>
        </tr>`,
    );
    return c.html(
      layout(
        `${job.label} · ${graph.name}`,
        html`<nav>
            <a href="/graphs/${graph.id}">Graph ${graph.name}</a>
          </nav>
          <h1>${job.label}</h1>
          <p>
            ${job.kind} ·
            ${outcome(job.state, job.result)}${job.reason ? html` (${job.reason})` : ''} · commit
            <code>${graph.sha.slice(0, 12)}</code> · defined at
            <code>${job.source.file}:${job.source.line}</code>
          </p>
          <h2>Runs</h2>
          <table>
            <tr>
              <th>attempt</th>
              <th>cause</th>
              <th>result</th>
              <th>reason</th>
              <th>exit</th>
              <th>minion</th>
              <th>started</th>
              <th>finished</th>
              <th></th>
            </tr>
            ${runs}
          </table>
          ${
            logTail
              ? html`<h2>The end of the latest log</h2>
                  <pre>${logTail}</pre>`
              : ''
          }`,
        await account(c),
      ),
    );
  });
