/**
 * The web app's page: a form that posts a job to /api/jobs, and a view of one
 * job that follows its server-sent events (preview frames, the loss plot,
 * progress) and reattaches after a reload through #job=ID in the address.
 * Or, with "Compute on: this browser", the same view fed by stylegram's browser
 * module (/stylegram-browser.js), which paints in this tab's Web Worker and posts
 * nothing to the server; a static site (npm run build:site) has only that.
 * Plain DOM code and uPlot; esbuild bundles it (npm run build).
 */

import uPlot from "uplot";
import type * as Browser from "../src/browser/index.js";
import type { JobView } from "../src/server/job-view.js";

/** A page of `npm run build:site`: no server behind it, options from options.json. */
const STATIC = document.querySelector('meta[name="stylegram-site"][content="static"]') !== null;

// ---- The form ---------------------------------------------------------------

type Value = string | number | boolean;

/** A setting of the form, by the library's option name; values and defaults come from the server's schema. */
type Field = { key: string; label: string; hint?: string } & (
  | { kind: "select"; values?: Value[]; format?: (v: Value) => string }
  | { kind: "range"; min: number; max: number; step: number }
  | { kind: "log-range"; min: number; max: number }
  | { kind: "check" }
);

/**
 * The settings the form shows. One line adds one: a select whose values the
 * server's schema lists (an enum) needs only its key and label.
 */
const FIELDS: Field[] = [
  {
    key: "size",
    label: "Size",
    kind: "select",
    values: [128, 256, 384, 512, 768, 1024],
    format: (v) => `${v} px`,
  },
  {
    key: "styleWeight",
    label: "Style strength",
    kind: "log-range",
    min: 10,
    max: 10_000,
    hint: "style weight",
  },
  { key: "iterations", label: "Iterations", kind: "range", min: 20, max: 1000, step: 10 },
  {
    key: "colors",
    label: "Colours",
    kind: "select",
    format: (v) =>
      ({
        style: "the painting's",
        histogram: "the photo's (histogram)",
        luminance: "the photo's (luminance)",
      })[String(v)] ?? String(v),
  },
  { key: "device", label: "Device", kind: "select" },
  { key: "precision", label: "Precision (CPU)", kind: "select" },
];

interface Schema {
  properties: Record<string, { default?: Value; anyOf?: { const?: Value }[] }>;
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** Slider position 0..1000 <-> a value on a logarithmic scale from min to max. */
const toLog = (f: { min: number; max: number }, pos: number) =>
  Number((f.min * (f.max / f.min) ** (pos / 1000)).toPrecision(2)); // 2 digits: 500, not 499.4
const fromLog = (f: { min: number; max: number }, v: number) =>
  Math.round((1000 * Math.log(v / f.min)) / Math.log(f.max / f.min));

/** Reads a field's current value from its control. */
const readers = new Map<string, () => Value>();

function renderFields(schema: Schema): void {
  const box = $("fields");
  for (const f of FIELDS) {
    const prop = schema.properties[f.key];
    if (!prop) continue; // an option this server does not know (yet)
    const fallback = prop.default;
    const row = document.createElement("div");
    row.className = `field field-${f.kind}`;
    row.dataset.field = f.key;
    const id = `field-${f.key}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = f.label;
    const output = document.createElement("output");
    output.htmlFor = id;
    if (f.kind === "check") {
      const input = document.createElement("input");
      input.type = "checkbox";
      input.id = id;
      input.checked = fallback === true;
      label.prepend(input);
      row.append(label);
      readers.set(f.key, () => input.checked);
    } else if (f.kind === "select") {
      const select = document.createElement("select");
      select.id = id;
      const values = f.values ?? (prop.anyOf ?? []).map((a) => a.const as Value);
      for (const v of values) {
        const option = document.createElement("option");
        option.value = String(v);
        option.textContent = f.format ? f.format(v) : String(v);
        option.selected = v === fallback;
        select.append(option);
      }
      row.append(label, select);
      readers.set(f.key, () => {
        const v = select.value;
        return typeof values[0] === "number" ? Number(v) : v;
      });
    } else {
      const input = document.createElement("input");
      input.type = "range";
      input.id = id;
      const isLog = f.kind === "log-range";
      input.min = isLog ? "0" : String(f.min);
      input.max = isLog ? "1000" : String(f.max);
      input.step = isLog ? "1" : String(f.step);
      const start = typeof fallback === "number" ? fallback : f.min;
      input.value = String(isLog ? fromLog(f, start) : start);
      const read = () => (isLog ? toLog(f, Number(input.value)) : Number(input.value));
      const show = () => {
        output.textContent = f.hint ? `${f.hint} ${read()}` : String(read());
      };
      input.addEventListener("input", show);
      show();
      const head = document.createElement("div");
      head.className = "field-head";
      head.append(label, output);
      row.append(head, input);
      if (isLog) {
        const scale = document.createElement("div");
        scale.className = "scale";
        scale.innerHTML = "<span>subtle</span><span>strong</span>";
        row.append(scale);
      }
      readers.set(f.key, read);
    }
    box.append(row);
  }
}

// ---- Images -----------------------------------------------------------------

let photo: File | undefined;
let styles: File[] = [];

function thumb(file: File, onRemove?: () => void): HTMLElement {
  const box = document.createElement("span");
  box.className = "thumb";
  const img = document.createElement("img");
  img.src = URL.createObjectURL(file);
  img.alt = file.name;
  img.title = file.name;
  box.append(img);
  if (onRemove) {
    const x = document.createElement("button");
    x.type = "button";
    x.className = "remove";
    x.setAttribute("aria-label", `Remove ${file.name}`);
    x.textContent = "×";
    x.addEventListener("click", (e) => {
      e.preventDefault();
      e.stopPropagation();
      onRemove();
    });
    box.append(x);
  }
  return box;
}

function showImages(): void {
  const c = $("thumbs-content");
  c.replaceChildren(...(photo ? [thumb(photo)] : []));
  $("drop-content").classList.toggle("filled", photo !== undefined);
  const s = $("thumbs-style");
  s.replaceChildren(
    ...styles.map((f, i) =>
      thumb(f, () => {
        styles = styles.filter((_, k) => k !== i);
        showImages();
      }),
    ),
  );
  $("drop-style").classList.toggle("filled", styles.length > 0);
}

/** The types the server reads (it checks the bytes again); anything else is said at once, not after Start. */
const IMAGE_TYPES = new Set([
  "image/jpeg",
  "image/png",
  "image/webp",
  "image/gif",
  "image/tiff",
  "image/avif",
]);

function wireDrop(
  zone: HTMLElement,
  input: HTMLInputElement,
  field: "content" | "style",
  take: (files: File[]) => void,
): void {
  const choose = (list: FileList | null) => {
    const files = [...(list ?? [])];
    const images = files.filter((f) => IMAGE_TYPES.has(f.type));
    const others = files.filter((f) => !IMAGE_TYPES.has(f.type)).map((f) => f.name);
    const names =
      others.length > 2
        ? `${others.slice(0, 2).join(", ")} and ${others.length - 2} more`
        : others.join(" and ");
    zoneError(
      field,
      others.length === 0
        ? undefined
        : `${names} ${others.length > 1 ? "are not images" : "is not an image"} stylegram reads: choose JPEG, PNG, WebP, GIF, TIFF or AVIF.`,
    );
    if (images.length > 0) take(images);
  };
  input.addEventListener("change", () => {
    choose(input.files);
    input.value = "";
  });
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    choose(e.dataTransfer?.files ?? null);
  });
}

/** A problem with the files chosen for one drop zone, said under it as soon as they are chosen. */
function zoneError(field: "content" | "style", message: string | undefined): void {
  const p = $(`error-${field}`);
  p.hidden = message === undefined;
  p.textContent = message ?? "";
  $(`drop-${field}`).classList.toggle("invalid", message !== undefined);
}

// ---- Starting a job ---------------------------------------------------------

function formError(message: string | undefined, field?: string): void {
  const p = $("form-error");
  p.hidden = message === undefined;
  p.textContent = message ?? "";
  for (const el of document.querySelectorAll(".invalid")) el.classList.remove("invalid");
  if (field) {
    const target =
      field === "content"
        ? $("drop-content")
        : field === "style"
          ? $("drop-style")
          : document.querySelector(`[data-field="${field}"]`);
    target?.classList.add("invalid");
  }
}

async function start(e: SubmitEvent): Promise<void> {
  e.preventDefault();
  if (!photo) return formError("Choose a photo first.", "content");
  if (styles.length === 0) return formError("Choose at least one style image.", "style");
  formError(undefined);
  zoneError("content", undefined);
  zoneError("style", undefined);
  const options = Object.fromEntries([...readers].map(([k, read]) => [k, read()]));
  if ($<HTMLSelectElement>("compute").value === "browser") return runInBrowser(photo, styles, options);
  const body = new FormData();
  body.append("content", photo, photo.name);
  for (const s of styles) body.append("style", s, s.name);
  body.append("options", JSON.stringify(options));
  const button = $<HTMLButtonElement>("start");
  button.disabled = true;
  button.textContent = "Uploading…";
  try {
    const r = await api("/api/jobs", { method: "POST", body });
    const answer = (await r.json()) as { id?: string; error?: string; field?: string };
    if (!r.ok || !answer.id) {
      const wait = r.headers.get("retry-after");
      return formError(
        `${answer.error ?? `The server answered ${r.status}.`}${r.status === 429 && wait ? ` (retry in ${wait} s)` : ""}`,
        answer.field,
      );
    }
    placeholder = URL.createObjectURL(photo);
    // The job's card is shown (and on a narrow screen moved above the form) before it is scrolled to;
    // scrolling first would leave the view on the form, the card far above it.
    scrollToJob = window.matchMedia("(max-width: 900px)").matches;
    location.hash = `job=${answer.id}`;
  } catch (err) {
    formError(`Could not reach the server: ${(err as Error).message}`);
  } finally {
    button.disabled = false;
    button.textContent = "Start";
  }
}

// ---- The token --------------------------------------------------------------

let asking: Promise<void> | undefined;

/**
 * Asks for the server's token (a server others can reach needs one) and gives it to POST /api/login,
 * which keeps it in an HttpOnly cookie: the page's requests, event stream, previews and downloads
 * all carry it from then on, so the page asks once. Resolves when a token has been taken.
 */
function askToken(): Promise<void> {
  asking ??= new Promise<void>((resolve) => {
    const dialog = $<HTMLDialogElement>("token-dialog");
    const input = $<HTMLInputElement>("token");
    const error = $("token-error");
    $("token-form").onsubmit = async (e) => {
      e.preventDefault();
      const r = await fetch("/api/login", {
        method: "POST",
        headers: { authorization: `Bearer ${input.value.trim()}` },
      }).catch(() => undefined);
      if (r?.ok) {
        dialog.close();
        asking = undefined;
        return resolve();
      }
      error.hidden = false;
      error.textContent = r
        ? (((await r.json().catch(() => ({}))) as { error?: string }).error ??
          `The server answered ${r.status}.`)
        : "Could not reach the server.";
      input.select();
    };
    // It cannot be dismissed: without a token the page can do nothing.
    dialog.addEventListener("cancel", (e) => e.preventDefault());
    dialog.showModal();
    input.focus();
  });
  return asking;
}

/** fetch() for the API: a 401 asks for the token and tries once more. */
async function api(url: string, init?: RequestInit): Promise<Response> {
  const r = await fetch(url, init);
  if (r.status !== 401) return r;
  await askToken();
  return fetch(url, init);
}

// ---- Following a job --------------------------------------------------------

/** The photo's own picture, shown until the first frame arrives (only in the tab that uploaded it). */
let placeholder: string | undefined;
/** Set by Start on a narrow screen: the next render scrolls its card into view. */
let scrollToJob = false;
let source: EventSource | undefined;
let plot: uPlot | undefined;
let points: [number[], number[]] = [[], []];
let total = 0;
let drawPending = false;

function clock(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return m >= 60
    ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`
    : `${m}:${String(s % 60).padStart(2, "0")}`;
}

const lossText = (v: number | null | undefined) => (v === null || v === undefined ? "–" : v.toExponential(3));

function status(state: JobView["state"] | "gone", text: string): void {
  const badge = $("badge");
  badge.className = `badge ${state}`;
  badge.textContent = {
    queued: "Waiting",
    running: "Painting",
    cancelling: "Stopping",
    done: "Done",
    failed: "Failed",
    cancelled: "Cancelled",
    gone: "Gone",
  }[state];
  $("status-text").textContent = text;
  $("cancel").hidden = state !== "queued" && state !== "running";
  $("job-view").dataset.state = state;
}

function progress(iteration: number, iterations: number): void {
  total = iterations;
  const pct = iterations > 0 ? (100 * iteration) / iterations : 0;
  $("bar").style.width = `${pct}%`;
  $("progress").setAttribute("aria-valuenow", String(Math.round(pct)));
  $("stat-iteration").textContent = `${iteration} / ${iterations}`;
}

function makePlot(): uPlot {
  const box = $("plot");
  const accent = getComputedStyle(document.documentElement).getPropertyValue("--accent").trim() || "#4f46e5";
  const u = new uPlot(
    {
      width: Math.max(200, box.clientWidth),
      height: 170,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false }, y: { distr: 3 } },
      axes: [
        {
          stroke: "#77746f",
          grid: { stroke: "#ece9e3" },
          ticks: { show: false },
          size: 30,
          // Iterations are whole: ticks at 1, 2, 5, 10, ... never 1.5.
          incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000],
          values: (_u, vals) => {
            const labels = vals.map((v) => (Number.isInteger(v) ? String(v) : ""));
            box.dataset.xticks = labels.filter((l) => l !== "").join(",");
            return labels;
          },
        },
        {
          stroke: "#77746f",
          grid: { stroke: "#ece9e3" },
          ticks: { show: false },
          size: 58,
          // Lines and labels at whole powers of ten only: a log axis's 2..9 lines crowd a small plot.
          splits: (_u, _axis, min, max) => {
            const decades: number[] = [];
            for (let e = Math.ceil(Math.log10(min)); e <= Math.floor(Math.log10(max)); e++)
              decades.push(10 ** e);
            return decades;
          },
          values: (_u, vals) => vals.map((v) => (v === null ? "" : v.toExponential(0).replace("+", ""))),
        },
      ],
      series: [
        { label: "iteration" },
        { label: "loss", stroke: accent, width: 2, fill: `${accent}1a`, points: { show: false } },
      ],
    },
    points,
    box,
  );
  new ResizeObserver(() => u.setSize({ width: Math.max(200, box.clientWidth), height: 170 })).observe(box);
  return u;
}

/** Redraws the plot once per frame however many points arrived. */
function drawSoon(): void {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    plot ??= makePlot();
    plot.setData(points);
    $("plot").dataset.points = String(points[0].length);
    // Until a job's first point, uPlot would keep the last job's axes: the space stays, empty.
    $("plot").classList.toggle("empty", points[0].length === 0);
  });
}

function showPreview(url: string | null): void {
  const img = $<HTMLImageElement>("preview");
  if (url !== null && img.getAttribute("src") !== url) img.src = url;
  $("preview-box").classList.toggle("waiting", url === null || url === placeholder);
}

/** The preview's box takes the picture's shape, so that no background shows beside it. */
function fitPreview(): void {
  const img = $<HTMLImageElement>("preview");
  if (img.naturalWidth > 0 && img.naturalHeight > 0)
    $("preview-box").style.setProperty("--ratio", String(img.naturalWidth / img.naturalHeight));
}

function showSettings(v: JobView): void {
  const list = $("settings");
  const entries: [string, string][] = [
    ["Photo", v.content],
    [v.styles.length > 1 ? "Styles" : "Style", v.styles.join(", ")],
    ...Object.entries(v.options).map(([k, val]): [string, string] => [
      FIELDS.find((f) => f.key === k)?.label ?? k,
      Array.isArray(val) ? val.join(", ") : typeof val === "boolean" ? (val ? "yes" : "no") : String(val),
    ]),
  ];
  list.replaceChildren(
    ...entries.flatMap(([k, val]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = val;
      return [dt, dd];
    }),
  );
  // One unbreakable span per shell word, so that a narrow screen wraps between words, not inside a flag.
  const words = v.command.match(/(?:'[^']*'|\\.|[^\s'])+/g) ?? [];
  $("command").replaceChildren(
    ...words.flatMap((w, i) => {
      const span = document.createElement("span");
      span.textContent = w;
      return i === 0 ? [span] : [" ", span];
    }),
  );
}

function showEnd(v: Pick<JobView, "id" | "state" | "error" | "result">): void {
  const err = $("error");
  err.hidden = v.state !== "failed";
  err.textContent = v.error ?? "";
  const box = $("downloads");
  box.hidden = v.result === null;
  if (v.result) {
    const result = v.result;
    box.querySelectorAll("a").forEach((a) => {
      a.remove();
    });
    for (const [f, label] of [
      ["png", "PNG"],
      ["jpeg", "JPEG"],
      ["webp", "WebP"],
    ] as const) {
      const a = document.createElement("a");
      a.className = "button";
      a.id = `download-${f}`;
      a.href = result[f];
      a.download = "";
      a.textContent = label;
      box.append(a);
    }
    showPreview(result.png);
  }
}

function queuedText(position: number | null): string {
  if (position === null) return "Waiting for a free slot";
  return position === 1
    ? "Next in line"
    : `In line: ${position - 1} job${position > 2 ? "s" : ""} ahead of yours`;
}

function render(v: JobView): void {
  document.body.classList.add("has-job");
  $("empty").hidden = true;
  $("job-view").hidden = false;
  $("job-view").dataset.job = v.id;
  if (scrollToJob) {
    scrollToJob = false;
    $("job").scrollIntoView({ block: "start" });
  }
  points = [v.losses.map((p) => p[0]), v.losses.map((p) => p[1])];
  drawSoon();
  progress(v.iteration, v.iterations);
  $("stat-elapsed").textContent = clock(v.elapsed);
  $("stat-eta").textContent = clock(v.eta);
  $("stat-loss").textContent = lossText(v.loss);
  showPreview(v.preview ?? placeholder ?? null);
  showSettings(v);
  showEnd(v);
  const text = {
    queued: queuedText(v.position),
    running: v.iteration > 0 ? "" : "Preparing the network…",
    cancelling: STOPPING,
    done: `${v.iteration} iterations in ${clock(v.elapsed)}${v.result ? `, ${v.result.width} × ${v.result.height}` : ""}`,
    failed: "",
    cancelled: cancelledText(v.iteration, v.iterations, v.result),
  }[v.state];
  status(v.state, text);
}

const STOPPING = "Stopping after the current step…";

/** What a cancelled job kept: like the CLI's Ctrl-C, the best picture so far once it has one. */
function cancelledText(iteration: number, iterations: number, result: { width: number } | null): string {
  return result
    ? `Cancelled at iteration ${iteration} of ${iterations}; the best picture so far is kept.`
    : "Cancelled before the first iteration: there is no picture.";
}

function attach(id: string): void {
  source?.close();
  points = [[], []];
  const es = new EventSource(`/api/jobs/${encodeURIComponent(id)}/events`);
  source = es;
  const on = <T>(type: string, handle: (data: T) => void) =>
    es.addEventListener(type, (e) => handle(JSON.parse((e as MessageEvent<string>).data) as T));
  on<JobView>("snapshot", (v) => {
    render(v);
    if (v.state === "done" || v.state === "failed" || v.state === "cancelled") es.close();
  });
  on<{ position: number }>("queued", (d) => status("queued", queuedText(d.position)));
  on("running", () => status("running", "Preparing the network…"));
  on<{ stage: string; width?: number; height?: number }>("stage", (d) => {
    const words: Record<string, string> = {
      device: "Choosing where to compute…",
      weights: "Loading the network…",
      objective: `Preparing ${d.width ?? ""} × ${d.height ?? ""}: the style targets and the graph…`,
    };
    status("running", words[d.stage] ?? "");
  });
  on<{
    iteration: number;
    iterations: number;
    loss: number;
    elapsed: number;
    eta: number;
    preview: string | null;
  }>("progress", (d) => {
    const state = $("job-view").dataset.state;
    // A stopping run's last step is counted, but it is not painting on.
    const stopping = state === "cancelling";
    if (!stopping && (d.iteration === 1 || state !== "running")) status("running", "");
    progress(d.iteration, d.iterations);
    $("stat-elapsed").textContent = clock(d.elapsed);
    $("stat-eta").textContent = stopping ? "–" : clock(d.eta);
    $("stat-loss").textContent = lossText(d.loss);
    // A job resumed from its checkpoint (a queue's worker stopped) counts on from there: what came after goes.
    const keep = points[0].findIndex((i) => i >= d.iteration);
    if (keep >= 0) points = [points[0].slice(0, keep), points[1].slice(0, keep)];
    points[0].push(d.iteration);
    points[1].push(d.loss);
    drawSoon();
    if (d.preview) showPreview(d.preview);
  });
  on<{ iterations: number; elapsed: number; width: number; height: number; loss: number }>("done", (d) => {
    es.close();
    progress(d.iterations, total);
    $("stat-eta").textContent = clock(0);
    $("stat-loss").textContent = lossText(d.loss);
    status("done", `${d.iterations} iterations in ${clock(d.elapsed)}, ${d.width} × ${d.height}`);
    const base = `/api/jobs/${encodeURIComponent(id)}/result?format=`;
    showEnd({
      id,
      state: "done",
      error: null,
      result: {
        width: d.width,
        height: d.height,
        png: `${base}png`,
        jpeg: `${base}jpeg`,
        webp: `${base}webp`,
      },
    });
  });
  on<{ error: string }>("failed", (d) => {
    es.close();
    status("failed", "");
    showEnd({ id, state: "failed", error: d.error, result: null });
  });
  on("cancelling", () => {
    $("stat-eta").textContent = "–";
    status("cancelling", STOPPING);
  });
  on<{ iterations: number; loss: number | null; result: { width: number; height: number } | null }>(
    "cancelled",
    (d) => {
      es.close();
      progress(d.iterations, total);
      $("stat-eta").textContent = "–";
      status("cancelled", cancelledText(d.iterations, total, d.result));
      const base = `/api/jobs/${encodeURIComponent(id)}/result?format=`;
      showEnd({
        id,
        state: "cancelled",
        error: null,
        result: d.result && {
          width: d.result.width,
          height: d.result.height,
          png: `${base}png`,
          jpeg: `${base}jpeg`,
          webp: `${base}webp`,
        },
      });
    },
  );
  es.addEventListener("error", () => {
    if (es.readyState !== EventSource.CLOSED) return; // the browser retries by itself
    void api(`/api/jobs/${encodeURIComponent(id)}`).then(async (r) => {
      if (r.ok) return render((await r.json()) as JobView);
      $("empty").hidden = true;
      $("job-view").hidden = false;
      status(
        "gone",
        ((await r.json().catch(() => ({}))) as { error?: string }).error ??
          `The server answered ${r.status}.`,
      );
    });
  });
}

// ---- Computing in this browser ------------------------------------------------

/** The browser module, loaded from the server (or the static site) on first use: not bundled, so it matches its worker. */
let browserModule: Promise<typeof Browser> | undefined;
const loadBrowserModule = () => {
  const url = new URL("stylegram-browser.js", document.baseURI).href;
  browserModule ??= import(/* @vite-ignore */ url) as Promise<typeof Browser>;
  return browserModule;
};

/** The run in this tab, while it runs: Cancel aborts it. */
let browserRun: AbortController | undefined;
/** Object URLs of the last run's frames and files, freed when the next starts. */
let runUrls: string[] = [];

/** The frame on show: freed when the next replaces it (a long run makes hundreds). */
let frameUrl: string | undefined;

function showFrame(blob: Blob): void {
  const url = URL.createObjectURL(blob);
  showPreview(url);
  if (frameUrl) URL.revokeObjectURL(frameUrl);
  frameUrl = url;
}

const keepUrl = (blob: Blob) => {
  const url = URL.createObjectURL(blob);
  runUrls.push(url);
  return url;
};

/** ImageData as an image file of `type`, through a canvas. */
function encode(image: ImageData, type: string): Promise<Blob> {
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  (canvas.getContext("2d") as CanvasRenderingContext2D).putImageData(image, 0, 0);
  return new Promise((resolve, reject) =>
    canvas.toBlob(
      (b) => (b ? resolve(b) : reject(new Error(`this browser cannot write ${type}`))),
      type,
      0.92,
    ),
  );
}

/** The settings card of a browser run: what was asked, and where it computes. */
function showBrowserSettings(
  content: File,
  styleFiles: File[],
  options: Record<string, Value>,
  where: string,
): void {
  showSettings({
    content: content.name,
    styles: styleFiles.map((f) => f.name),
    options: { ...options, "Compute on": where } as JobView["options"],
    command: "",
  } as unknown as JobView);
  ($("command").parentElement as HTMLElement).hidden = true;
}

async function runInBrowser(
  content: File,
  styleFiles: File[],
  options: Record<string, Value>,
): Promise<void> {
  browserRun?.abort();
  source?.close();
  if (jobFromAddress()) history.replaceState(null, "", location.pathname + location.search);
  for (const url of [...runUrls, ...(frameUrl ? [frameUrl] : [])]) URL.revokeObjectURL(url);
  runUrls = [];
  frameUrl = undefined;
  const controller = new AbortController();
  browserRun = controller;
  const ours = () => browserRun === controller;
  document.body.classList.add("has-job");
  $("empty").hidden = true;
  $("job-view").hidden = false;
  $("job-view").dataset.job = "browser";
  placeholder = keepUrl(content);
  points = [[], []];
  drawSoon();
  showPreview(placeholder);
  showEnd({ id: "browser", state: "running", error: null, result: null });
  const iterations = Number(options.iterations ?? 0);
  progress(0, iterations);
  for (const id of ["stat-elapsed", "stat-eta", "stat-loss"]) $(id).textContent = "–";
  status("running", "Loading stylegram in this browser…");
  showBrowserSettings(content, styleFiles, options, "this browser");
  if (window.matchMedia("(max-width: 900px)").matches) $("job").scrollIntoView({ block: "start" });
  const { device, ...rest } = options;
  let lastFrame = 0;
  let ended = false;
  try {
    const m = await loadBrowserModule();
    const result = await m.stylize({
      ...(rest as Partial<Browser.BrowserStylizeOptions>),
      content,
      styles: styleFiles,
      // The form's CPU is the server's; the browser's CPU is onnxruntime-web's wasm build.
      device: device === "cpu" ? "wasm" : (device as Browser.BrowserDeviceRequest),
      png: true,
      signal: controller.signal,
      onDownload: (d) => {
        if (!ours()) return;
        const mb = (n: number) => (n / 1e6).toFixed(0);
        status(
          "running",
          d.cached
            ? "Loading the network from this browser's storage…"
            : `Downloading the network (once): ${mb(d.received)}${d.total ? ` of ${mb(d.total)}` : ""} MB`,
        );
      },
      onStage: (d) => {
        if (!ours()) return;
        if (d.stage === "device") {
          const where = `this browser (${d.device === "webgpu" ? "WebGPU" : "wasm, on its CPU"}: ${d.reason ?? ""})`;
          showBrowserSettings(content, styleFiles, options, where);
        }
        const words: Record<string, string> = {
          device: "Choosing where to compute…",
          weights: "Loading the network…",
          objective: `Preparing ${d.width ?? ""} × ${d.height ?? ""}: the style targets and the graph…`,
        };
        if (words[d.stage]) status("running", words[d.stage] as string);
      },
      onProgress: (d) => {
        if (!ours()) return;
        const state = $("job-view").dataset.state;
        if (state !== "cancelling") status("running", "");
        progress(d.iteration, d.iterations);
        $("stat-elapsed").textContent = clock(d.seconds);
        $("stat-eta").textContent = state === "cancelling" ? "–" : clock(d.etaSeconds);
        $("stat-loss").textContent = lossText(d.loss);
        points[0].push(d.iteration);
        points[1].push(d.loss);
        drawSoon();
      },
      onSnapshot: (image) => {
        // A frame at most every 250 ms, as the server sends them.
        if (!ours() || performance.now() - lastFrame < 250) return;
        lastFrame = performance.now();
        void encode(image, "image/png").then((b) => {
          // A frame still encoding when the run ends must not cover its final picture.
          if (ours() && !ended) showFrame(b);
        });
      },
    });
    ended = true;
    if (!ours()) return;
    const png = result.png ?? (await encode(result.image, "image/png"));
    const [jpeg, webp] = await Promise.all([
      encode(result.image, "image/jpeg"),
      encode(result.image, "image/webp"),
    ]);
    const files = { png: keepUrl(png), jpeg: keepUrl(jpeg), webp: keepUrl(webp) };
    const size = { width: result.image.width, height: result.image.height };
    const cancelled = controller.signal.aborted;
    progress(result.iterations, cancelled ? total : result.iterations);
    $("stat-eta").textContent = cancelled ? "–" : clock(0);
    $("stat-loss").textContent = lossText(result.loss.total);
    status(
      cancelled ? "cancelled" : "done",
      cancelled
        ? cancelledText(result.iterations, total, size)
        : `${result.iterations} iterations in ${clock(result.seconds)}, ${size.width} × ${size.height}, on ${result.device === "webgpu" ? "this browser's GPU" : "this browser's CPU"}`,
    );
    showEnd({
      id: "browser",
      state: cancelled ? "cancelled" : "done",
      error: null,
      result: { ...size, ...files },
    });
    for (const [f, ext] of [
      ["png", "png"],
      ["jpeg", "jpg"],
      ["webp", "webp"],
    ] as const) {
      const a = document.getElementById(`download-${f}`) as HTMLAnchorElement | null;
      if (a) a.download = `${content.name.replace(/\.[^.]*$/, "")}-stylegram.${ext}`;
    }
  } catch (err) {
    ended = true;
    if (!ours()) return;
    const e = err as Error;
    if (e.name === "StoppedError" || e.name === "StoppedBeforeStartError") {
      status("cancelled", cancelledText(0, total, null));
      showEnd({ id: "browser", state: "cancelled", error: null, result: null });
    } else {
      status("failed", "");
      showEnd({ id: "browser", state: "failed", error: e.message, result: null });
    }
  } finally {
    if (ours()) browserRun = undefined;
  }
}

/**
 * "Compute on": this browser when it has a GPU that is not a software one (or on a static site, where
 * there is no server), else the server; the hint says what this browser has.
 */
async function chooseCompute(): Promise<void> {
  const select = $<HTMLSelectElement>("compute");
  const hint = $("compute-hint");
  if (STATIC) {
    select.querySelector('option[value="server"]')?.remove();
    select.disabled = true;
  }
  let adapter: Browser.AdapterReport;
  try {
    adapter = await (await loadBrowserModule()).gpuAdapter();
  } catch (e) {
    hint.textContent = `This browser cannot run stylegram: ${(e as Error).message}`;
    if (!STATIC) select.value = "server";
    return;
  }
  const gpu = adapter.available && !adapter.software;
  if (!STATIC) select.value = gpu ? "browser" : "server";
  const cpu = STATIC
    ? "it paints on the CPU (wasm), slowly"
    : "in this browser it would paint on the CPU (wasm), slower than the server";
  hint.textContent = gpu
    ? `This browser has a GPU (${adapter.name}): it paints here, and nothing is uploaded.`
    : adapter.available
      ? `This browser's only GPU is a software one (${adapter.name}): ${cpu}.`
      : `This browser has no WebGPU (${adapter.problem ?? "none"}): ${cpu}.`;
  select.dataset.gpu = gpu ? "yes" : "no";
}

function jobFromAddress(): string | undefined {
  return /^#job=([\w-]+)$/.exec(location.hash)?.[1];
}

// ---- Wiring -----------------------------------------------------------------

async function main(): Promise<void> {
  wireDrop($("drop-content"), $<HTMLInputElement>("content"), "content", (files) => {
    if (files[0]) photo = files[0];
    showImages();
  });
  wireDrop($("drop-style"), $<HTMLInputElement>("style"), "style", (files) => {
    styles = [...styles, ...files];
    showImages();
  });
  $<HTMLFormElement>("form").addEventListener("submit", (e) => void start(e));
  $("preview").addEventListener("load", fitPreview);
  $("cancel").addEventListener("click", () => {
    if (browserRun) {
      // The run stops after the current step and keeps the best picture so far.
      browserRun.abort();
      status("cancelling", STOPPING);
      return;
    }
    const id = jobFromAddress();
    if (!id) return;
    $<HTMLButtonElement>("cancel").disabled = true;
    void api(`/api/jobs/${encodeURIComponent(id)}`, { method: "DELETE" }).finally(() => {
      $<HTMLButtonElement>("cancel").disabled = false;
    });
  });
  $("copy").addEventListener("click", async () => {
    const text = $("command").textContent ?? "";
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Without a secure context (a LAN address over http) there is no clipboard API: select the text instead.
      const range = document.createRange();
      range.selectNodeContents($("command"));
      getSelection()?.removeAllRanges();
      getSelection()?.addRange(range);
      document.execCommand("copy");
    }
    $("copy").textContent = "Copied";
    setTimeout(() => {
      $("copy").textContent = "Copy";
    }, 1500);
  });
  window.addEventListener("hashchange", () => {
    const id = jobFromAddress();
    if (id) {
      browserRun?.abort();
      ($("command").parentElement as HTMLElement).hidden = false;
      attach(id);
    }
  });
  const compute = chooseCompute();
  const options = (await (await (STATIC ? fetch("options.json") : api("/api/options"))).json()) as {
    schema: Schema;
  };
  renderFields(options.schema);
  await compute;
  document.body.dataset.ready = "yes";
  const id = jobFromAddress();
  if (id) attach(id);
}

void main();
