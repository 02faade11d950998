#!/usr/bin/env bash
# Docs job: execute the tutorials, build the documentation with warnings as errors, check the built site for
# broken local links and missing images, and open it in a headless browser (Debian's chromium) for screenshots.
#
#   .ci/docs.sh                 # everything
#   DOCS_SKIP_NOTEBOOKS=1 ...   # build from the notebooks' committed outputs without executing them
#   DOCS_REQUIRE_BROWSER=1 ...  # fail (instead of skipping the browser check) when no chromium is installed
#
# Needs the package installed with its `doc` extra in the active Python (`pip install -e ".[doc]"`).
# The notebooks are executed in place (nbclient, kernel `python3`), so the site shows the outputs of this run;
# commit them after a local run. Artifacts: docs/_build/html, docs/_build/sphinx.log,
# docs/_build/notebook_timings.tsv, docs/_build/screenshots/*.png.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PY=${PYTHON:-python}
export MPLBACKEND=Agg
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYDEVD_DISABLE_FILE_VALIDATION=1
build=docs/_build
mkdir -p "$build"

# --- 1. execute the notebooks ---------------------------------------------------------------------------------
if [[ "${DOCS_SKIP_NOTEBOOKS:-0}" != 1 ]]; then
  # figures must reach the notebooks: the inline backend, whatever MPLBACKEND the caller exported
  MPLBACKEND=module://matplotlib_inline.backend_inline "$PY" - "$build/notebook_timings.tsv" tutorials/*.ipynb <<'EOF'
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

timings, paths = sys.argv[1], sys.argv[2:]
rows, failed = [], []
for path in paths:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(Path(path).parent)}}
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        failed.append(path)
        print(f"docs: {path} FAILED after {time.perf_counter() - start:.0f} s\n{err}", file=sys.stderr, flush=True)
        continue
    seconds = time.perf_counter() - start
    nbformat.write(nb, path)
    rows.append((path, seconds))
    print(f"docs: executed {path} in {seconds:.0f} s", flush=True)
Path(timings).write_text("notebook\tseconds\n" + "".join(f"{p}\t{s:.1f}\n" for p, s in rows))
sys.exit(1 if failed else 0)
EOF
fi

# --- 2. build the site, warnings are errors -------------------------------------------------------------------
rm -rf "$build/html" docs/generated
start=$(date +%s)
if ! "$PY" -m sphinx -W --keep-going -b html docs "$build/html" > "$build/sphinx.log" 2>&1; then
  cat "$build/sphinx.log"
  echo "docs: sphinx-build -W failed (log above)" >&2
  exit 1
fi
grep -E "^build succeeded|WARNING|ERROR" "$build/sphinx.log" || true
echo "docs: sphinx-build -W clean in $(( $(date +%s) - start )) s"

# --- 3. local links and images of every built page ------------------------------------------------------------
"$PY" - "$build/html" <<'EOF'
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

site = Path(sys.argv[1]).resolve()


class Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []  # (tag, url)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in {"img": ["src"], "a": ["href"], "link": ["href"], "script": ["src"], "source": ["src"]}.get(tag, []):
            if a.get(key):
                self.refs.append((tag, a[key]))


# the site's pages (not the theme's template snippets under _static/ or the sources under _sources/)
pages = sorted(p for p in site.rglob("*.html") if p.relative_to(site).parts[0] not in ("_static", "_sources"))
broken, n_img, n_links = [], 0, 0
for page in pages:
    parser = Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    for tag, url in parser.refs:
        parts = urlsplit(url)
        if parts.scheme or url.startswith(("//", "#", "mailto:", "data:", "javascript:")):
            if tag == "img" and parts.scheme not in ("", "data"):
                broken.append(f"{page.relative_to(site)}: remote image {url} (the site must be self-contained)")
            continue
        target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        if target.is_dir():
            target = target / "index.html"
        n_img += tag == "img"
        n_links += tag == "a"
        if not target.exists():
            broken.append(f"{page.relative_to(site)}: <{tag}> -> {url} (missing {target})")
print(f"docs: {len(pages)} pages, {n_img} local images, {n_links} local links checked")
if broken:
    print("docs: broken references:\n  " + "\n  ".join(broken), file=sys.stderr)
    sys.exit(1)
EOF

# --- 4. headless browser: screenshots and rendered DOM --------------------------------------------------------
browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" > /dev/null 2>&1; then browser=$(command -v "$b"); break; fi
done
if [[ -z "$browser" ]]; then
  if [[ "${DOCS_REQUIRE_BROWSER:-0}" == 1 ]]; then
    echo "docs: no chromium found (apt-get install -y chromium)" >&2
    exit 1
  fi
  echo "docs: no chromium found; skipping the browser check"
  exit 0
fi
shots="$build/screenshots"
rm -rf "$shots" && mkdir -p "$shots"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chrome() {
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage \
    --allow-file-access-from-files --user-data-dir="$profile" "$@" \
    2> >(grep -v -E "dbus|Fontconfig|sandbox|unexpected operator" >&2 || true)
}
# name:page:height (the quickstart and reading screenshots are tall enough to show their first figures)
for page in index:index.html:2000 quickstart:tutorials/01_quickstart.html:6000 reading:tutorials/06_reading_a_model.html:9000; do
  IFS=: read -r name rel height <<< "$page"
  file="$root/$build/html/$rel"
  chrome --window-size=1280,"$height" --hide-scrollbars --virtual-time-budget=10000 \
    --screenshot="$root/$shots/$name.png" "file://$file" > /dev/null
  # the DOM after loading, and a probe page that loads the same page in a frame and reports every image
  # that failed to decode (naturalWidth 0) once everything has loaded
  chrome --virtual-time-budget=10000 --dump-dom "file://$file" > "$shots/$name.dom.html"
  probe="$root/$shots/$name.probe.html"
  cat > "$probe" <<EOF
<!doctype html><html><body><pre id="out">pending</pre>
<iframe id="f" src="file://$file" style="width:1280px;height:2000px"></iframe>
<script>
document.getElementById("f").addEventListener("load", () => {
  const doc = document.getElementById("f").contentDocument;
  const imgs = Array.from(doc.images);
  const bad = imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute("src"));
  document.getElementById("out").textContent =
    "PROBE title=" + doc.title + " images=" + imgs.length + " broken=" + bad.length + " " + bad.join(" ");
});
</script></body></html>
EOF
  chrome --virtual-time-budget=20000 --dump-dom "file://$probe" > "$shots/$name.probe.dom.html"
done
"$PY" - "$shots" <<'EOF'
import re
import sys
from pathlib import Path

shots = Path(sys.argv[1])
# page name: (text in its title, at least n images)
expect = {"index": ("poems_mu", 1), "quickstart": ("Quickstart", 8), "reading": ("Reading a POEMS model", 6)}
ok = True
for name, (title, min_images) in expect.items():
    png = shots / f"{name}.png"
    dom = (shots / f"{name}.dom.html").read_text(encoding="utf-8", errors="replace")
    probe = (shots / f"{name}.probe.dom.html").read_text(encoding="utf-8", errors="replace")
    m_title = re.search(r"<title>(.*?)</title>", dom, re.S)
    n_img = len(re.findall(r"<img\b", dom))
    m = re.search(r"PROBE title=(.*?) images=(\d+) broken=(\d+)(.*?)</pre>", probe, re.S)
    problems = []
    if not png.exists() or png.stat().st_size < 10_000:
        problems.append("no screenshot")
    if not m_title or title not in m_title.group(1):
        problems.append(f"title {m_title.group(1) if m_title else None!r} lacks {title!r}")
    if n_img < min_images:
        problems.append(f"{n_img} <img> in the DOM, expected at least {min_images}")
    if not m:
        problems.append("the image probe did not report")
    elif int(m.group(3)):
        problems.append(f"{m.group(3)} of {m.group(2)} images failed to load:{m.group(4)}")
    if "Traceback (most recent call last)" in dom:
        problems.append("a Python traceback is shown on the page")
    status = "ok" if not problems else "FAILED: " + "; ".join(problems)
    shown = f"{m.group(2)} images loaded" if m else "probe missing"
    print(f"docs: browser {name}: title {m_title.group(1).strip() if m_title else '?'!r}, {n_img} <img>, {shown}, "
          f"screenshot {png} ({png.stat().st_size // 1024 if png.exists() else 0} KB): {status}")
    ok &= not problems
sys.exit(0 if ok else 1)
EOF
echo "docs: done"
