// A small line chart in SVG: a few series over shared time, an axis with
// the range's ends labelled. Enough for the console's three charts, with
// nothing to download.

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#0b62c4", "#c43d0b", "#17793a", "#8a3fc4", "#9a5b00", "#0b8fa3", "#c40b7a", "#5c6570"];

export function colour(index) {
  return PALETTE[index % PALETTE.length];
}

function element(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function label(value) {
  if (value >= 1000) return `${(value / 1000).toFixed(value >= 10000 ? 0 : 1)}k`;
  if (value >= 10 || value === 0) return `${Math.round(value)}`;
  return value.toFixed(value >= 1 ? 1 : 2);
}

// series: [{ points: [[t, value or null], ...], colour, dashed }]; a null
// value is a gap. range: [first t, last t] shown.
export function lineChart(svg, series, range) {
  const width = svg.clientWidth || 600;
  const height = svg.clientHeight || 160;
  const pad = { left: 36, right: 8, top: 8, bottom: 18 };
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const all = series.flatMap((s) => s.points).filter(([, v]) => v !== null);
  if (all.length === 0) {
    svg.append(element("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "no data yet"));
    return;
  }
  const times = all.map(([t]) => t);
  const t0 = range ? range[0] : Math.min(...times);
  const t1 = Math.max(t0 + 1, range ? range[1] : Math.max(...times));
  const top = Math.max(1, ...all.map(([, v]) => v));
  const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / top) * (height - pad.top - pad.bottom);
  svg.append(
    element("line", { class: "axis", x1: pad.left, y1: y(0), x2: width - pad.right, y2: y(0) }),
    element("line", { class: "axis", x1: pad.left, y1: pad.top, x2: pad.left, y2: y(0) }),
    element("text", { x: pad.left - 4, y: pad.top + 8, "text-anchor": "end" }, label(top)),
    element("text", { x: pad.left - 4, y: y(0), "text-anchor": "end" }, "0"),
    element("text", { x: pad.left, y: height - 4 }, new Date(t0 * 1000).toLocaleTimeString()),
    element("text", { x: width - pad.right, y: height - 4, "text-anchor": "end" }, new Date(t1 * 1000).toLocaleTimeString()),
  );
  for (const s of series) {
    // Runs of points without gaps: a line each, or a dot for a lone one.
    const runs = [[]];
    for (const point of s.points) {
      if (point[1] === null) runs.push([]);
      else runs[runs.length - 1].push(point);
    }
    for (const run of runs) {
      if (run.length === 1) {
        const [t, v] = run[0];
        svg.append(element("circle", { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2, fill: s.colour }));
        continue;
      }
      if (run.length === 0) continue;
      const d = run.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
      const path = element("path", { class: "line", d, stroke: s.colour });
      if (s.dashed) path.setAttribute("stroke-dasharray", "4 3");
      svg.append(path);
    }
  }
}
