#!/usr/bin/env bash
# Renders REPORT_DIR/index.html in headless Chromium at 1280 px wide, saves a screenshot of the
# whole page to REPORT_DIR/index.png, and fails if the page scrolls sideways, an element sticks
# out of the page's column (<body>), an image is broken (an <img> that did not load, an inline
# <svg> drawn empty, a url(#id) that names no element), or a figure's text cannot be read: two
# text elements of one <svg> overlap, or one lies outside its <svg>'s box.
# Usage: scripts/check_report_page.sh REPORT_DIR
#
# The page itself carries no script: a wrapper page in a temporary folder loads it in a 1280 px
# iframe and writes the measurements into its own DOM, which --dump-dom prints.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: scripts/check_report_page.sh REPORT_DIR" >&2
  exit 2
fi
report=$(cd "$1" && pwd)
page=$report/index.html
if [ ! -f "$page" ]; then
  echo "check_report_page: $page does not exist; run fairtune report first" >&2
  exit 2
fi
if ! command -v chromium >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
width=1280
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Root in a container: no sandbox, and /dev/shm is often too small for the renderer. The
# measurement keeps the scrollbars, as a laptop's browser shows them.
browser=(chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir="$work/profile")

# File URLs are each their own origin unless --allow-file-access-from-files, which lets the
# wrapper read the iframe's document.
cat >"$work/measure.html" <<EOF
<!DOCTYPE html>
<html><head><meta charset="utf-8"/>
<style>body { margin: 0; } iframe { border: 0; display: block; width: ${width}px; height: 900px; }</style>
</head><body>
<iframe id="page" src="file://$page"></iframe>
<pre id="result">no measurement: the page did not finish loading</pre>
<script>
document.getElementById("page").addEventListener("load", () => {
  const lines = [];
  try {
    const frame = document.getElementById("page");
    const view = frame.contentWindow;
    const doc = frame.contentDocument;
    const root = doc.scrollingElement;
    lines.push("scrollWidth " + root.scrollWidth, "clientWidth " + root.clientWidth,
      "innerWidth " + view.innerWidth, "scrollHeight " + root.scrollHeight);
    // The outermost elements inside <body> whose right edge lies beyond x = limit.
    const beyond = (limit) => [...doc.body.querySelectorAll("*")]
      .filter((element) => element.getBoundingClientRect().right > limit + 0.5)
      .filter((element) => element.parentElement === doc.body ||
        element.parentElement.getBoundingClientRect().right <= limit + 0.5);
    const describe = (element) => {
      const box = element.getBoundingClientRect();
      return "<" + element.localName + "> from x " + Math.round(box.left) + " to " + Math.round(box.right) + ": " +
        (element.textContent || "").trim().replace(/\s+/g, " ").slice(0, 60);
    };
    // Scrolls sideways: content wider than the viewport (clientWidth excludes a scrollbar, so
    // this is stricter than comparing with innerWidth).
    if (root.scrollWidth > root.clientWidth || root.scrollWidth > view.innerWidth) {
      lines.push("failure: the page scrolls sideways: scrollWidth " + root.scrollWidth + " > " + root.clientWidth);
      for (const element of beyond(root.clientWidth).slice(0, 5)) lines.push("failure: too wide: " + describe(element));
    }
    // Wider than the page's column: overflows the body's content box even where the margins
    // still hide it at this width.
    const body = doc.body.getBoundingClientRect();
    const columnRight = body.right - parseFloat(view.getComputedStyle(doc.body).paddingRight);
    const sticking = beyond(columnRight);
    lines.push("page column " + Math.round(body.left) + " to " + Math.round(columnRight) + ", elements beyond it " + sticking.length);
    for (const element of sticking.slice(0, 5)) lines.push("failure: wider than the page column: " + describe(element));
    const images = [...doc.images];
    lines.push("img elements " + images.length);
    for (const image of images) {
      if (!image.complete || image.naturalWidth === 0) lines.push("failure: image did not load: " + image.getAttribute("src"));
    }
    const figures = [...doc.querySelectorAll("svg")].filter((svg) => !svg.parentElement.closest("svg"));
    lines.push("inline svg elements " + figures.length);
    for (const [index, svg] of figures.entries()) {
      const box = svg.getBoundingClientRect();
      const title = (svg.querySelector("title") || {}).textContent || "svg " + (index + 1);
      if (box.width === 0 || box.height === 0 || svg.children.length < 2) {
        lines.push("failure: inline image drawn empty: " + title.slice(0, 60));
      }
    }
    // Text: each label's box as drawn (its bounding box in its own coordinates, carried through
    // its transform, so a rotated label is a rotated rectangle), tested against every other
    // label of the same figure with the separating-axis test, and against the figure's box.
    // Boxes are the font's em boxes, taller than the glyphs: touching lines of one paragraph
    // are not an overlap, so two boxes must overlap by more than 2 px to fail.
    const corners = (element) => {
      const box = element.getBBox();
      const matrix = element.getScreenCTM();
      return [[box.x, box.y], [box.x + box.width, box.y], [box.x + box.width, box.y + box.height], [box.x, box.y + box.height]]
        .map(([x, y]) => new DOMPoint(x, y).matrixTransform(matrix));
    };
    const penetration = (a, b) => {
      let least = Infinity;
      for (const polygon of [a, b]) {
        for (let i = 0; i < polygon.length; i++) {
          const p = polygon[i], q = polygon[(i + 1) % polygon.length];
          const length = Math.hypot(q.x - p.x, q.y - p.y);
          if (length === 0) continue;
          const nx = (p.y - q.y) / length, ny = (q.x - p.x) / length;
          const project = (points) => points.map((point) => point.x * nx + point.y * ny);
          const pa = project(a), pb = project(b);
          least = Math.min(least, Math.min(Math.max(...pa), Math.max(...pb)) - Math.max(Math.min(...pa), Math.min(...pb)));
        }
      }
      return least;
    };
    const quote = (element) => JSON.stringify((element.textContent || "").trim().replace(/\s+/g, " ").slice(0, 50));
    let labels = 0;
    for (const [index, svg] of figures.entries()) {
      const title = ((svg.querySelector(":scope > title") || {}).textContent || "svg " + (index + 1)).slice(0, 60);
      const frame = svg.getBoundingClientRect();
      const texts = [...svg.querySelectorAll("text")].filter((element) => (element.textContent || "").trim() !== "" &&
        view.getComputedStyle(element).display !== "none" && element.getBBox().width > 0);
      labels += texts.length;
      const shapes = texts.map(corners);
      let reported = 0;
      for (const [i, shape] of shapes.entries()) {
        const outside = shape.some((point) => point.x < frame.left - 1 || point.x > frame.right + 1 || point.y < frame.top - 1 || point.y > frame.bottom + 1);
        if (outside && reported++ < 5) lines.push("failure: text outside its figure in " + title + ": " + quote(texts[i]));
        for (let j = i + 1; j < shapes.length; j++) {
          const depth = penetration(shape, shapes[j]);
          if (depth > 2 && reported++ < 5) {
            lines.push("failure: overlapping text in " + title + ": " + quote(texts[i]) + " and " + quote(texts[j]) + " (by " + depth.toFixed(1) + " px)");
          }
        }
      }
    }
    lines.push("text elements checked " + labels);
    const references = [...doc.querySelectorAll("[fill^='url('], [stroke^='url('], [clip-path^='url('], [mask^='url('], [filter^='url(']")];
    let missing = 0;
    for (const element of references) {
      for (const name of ["fill", "stroke", "clip-path", "mask", "filter"]) {
        const match = /^url\(#([^)]+)\)/.exec(element.getAttribute(name) || "");
        if (match && !doc.getElementById(match[1])) {
          missing += 1;
          if (missing <= 5) lines.push("failure: " + name + " names a missing element: #" + match[1]);
        }
      }
    }
    lines.push("url(#id) references " + references.length);
  } catch (error) {
    lines.push("failure: cannot measure the page: " + error);
  }
  document.getElementById("result").textContent = lines.join("\n");
});
</script>
</body></html>
EOF

"${browser[@]}" --allow-file-access-from-files --window-size=$width,1000 --virtual-time-budget=30000 \
  --dump-dom "file://$work/measure.html" >"$work/dom.html" 2>"$work/chromium.log" || {
  echo "check_report_page: chromium failed:" >&2
  tail -5 "$work/chromium.log" >&2
  exit 1
}
result=$(sed -n '/<pre id="result">/,/<\/pre>/p' "$work/dom.html" |
  sed -e 's/<pre id="result">//' -e 's/<\/pre>.*//' -e 's/&lt;/</g' -e 's/&gt;/>/g' -e 's/&quot;/"/g' -e 's/&amp;/\&/g')
echo "$page at ${width} px:"
echo "$result" | sed 's/^/  /'

# The screenshot: a window as tall as the page (capped, as very tall captures fail), no scrollbars.
height=$(echo "$result" | sed -n 's/^scrollHeight //p')
height=${height:-2000}
height=$((height > 16000 ? 16000 : height))
"${browser[@]}" --hide-scrollbars --window-size=$width,"$height" --screenshot="$report/index.png" "file://$page" \
  >/dev/null 2>"$work/chromium.log" || {
  echo "check_report_page: the screenshot failed:" >&2
  tail -5 "$work/chromium.log" >&2
  exit 1
}
echo "screenshot: $report/index.png (${width} x ${height})"

if ! grep -q '^scrollWidth ' <<<"$result"; then
  echo "FAIL: no measurement from the page" >&2
  exit 1
fi
failures=$(grep -c '^failure:' <<<"$result" || true)
if [ "$failures" -gt 0 ]; then
  echo "FAIL: $failures problem(s) above" >&2
  exit 1
fi
echo "ok: no sideways scrolling at ${width} px, every image drawn, no figure text overlapping or outside its figure"
