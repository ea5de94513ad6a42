"""
Draw the documentation's pictures as SVG, by hand, with the standard library
only:

  - docs/images/handshake.svg: the sudp/1 handshake as a sequence diagram
    (HELLO, COOKIE, HANDSHAKE_INIT, HANDSHAKE_RESP, CONFIRM, then DATA), as
    docs/protocol.md sections 2, 5 and 9 specify it;
  - docs/images/performance.svg: every ratio of the "Figures" table of
    docs/performance.md against its same-run baseline, with its goal, read
    from that table, so the plot cannot say something the table does not.

Usage: python tools/make_images.py [OUTPUT_DIRECTORY]   (default: docs/images)

The output is deterministic: sudp_test.test_docs runs this script into a
temporary directory and requires the committed images to be byte for byte
what it draws.
"""

import os
import re
import sys
import textwrap
from xml.sax.saxutils import escape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FONT = 'font-family="DejaVu Sans, Verdana, Arial, sans-serif"'


def _text(x, y, text, size=13, anchor="start", weight="normal", fill="#222", style=""):
    extra = f' font-weight="{weight}"' if weight != "normal" else ""
    extra += f' font-style="{style}"' if style else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"'
            f'{extra}>{escape(text)}</text>')


def _svg(width, height, title, body):
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT}>',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        *body,
        "</svg>",
        "",
    ])


# -- the handshake -------------------------------------------------------------------------------

# (direction, name, detail lines, note (a line or a list of lines) at the receiving side)
MESSAGES = [
    ("phase", "1. the client proves its address; the server keeps no state", None, None),
    (">", "HELLO  (64 bytes)", ["8-byte nonce, zero padding: larger than its reply"], "no state kept"),
    ("<", "COOKIE  (29 bytes)", ["the nonce, a timestamp, a 16-byte MAC over the", "client's address and port"],
     None),
    ("phase", "2. the key exchange, signed by the server's pinned Ed25519 key", None, None),
    (">", "HANDSHAKE_INIT  (at least 122 bytes)", ["client index, the cookie, an ephemeral X25519 key,",
                                                   "the suites it offers"],
     ["cookie checked: keys derived,", "session pending"]),
    ("<", "HANDSHAKE_RESP  (122 bytes)", ["server index, the chosen suite, an ephemeral X25519 key,",
                                          "key confirmation, Ed25519 signature of the transcript"],
     "signature checked: keys derived"),
    ("phase", "3. the client proves it holds the keys", None, None),
    (">", "CONTROL, epoch 0:  [CLIENT_AUTH]  CONFIRM", ["encrypted; CLIENT_AUTH only if the client has a key"],
     "session open"),
    ("<", "CONTROL:  KEEPALIVE", ["acknowledges the CONFIRM"], "session open"),
    ("phase", "4. the session: messages both ways, 29 bytes of overhead each", None, None),
    ("<>", "DATA  (one application message each)", ["13-byte header, the encrypted message, 16-byte tag;",
                                                    "CONTROL packets for keepalives, rekeys, close"], None),
]


def handshakeSVG():
    width, client, server = 960, 250, 710
    body = []
    y = 86
    rows = []
    for kind, name, detail, note in MESSAGES:
        rows.append((kind, name, detail, note, y))
        y += 30 if kind == "phase" else 50 + 16 * len(detail)
    bottom = y - 8
    height = bottom + 34
    # phase bands first, so that everything else is drawn over them
    shades = ["#eef4fb", "#f3f0fa", "#eef8f0", "#fbf6ea"]
    phases = [r for r in rows if r[0] == "phase"]
    for i, (_, _, _, _, top) in enumerate(phases):
        end = phases[i + 1][4] - 24 if i + 1 < len(phases) else bottom
        body.append(f'<rect x="20" y="{top - 18}" width="{width - 40}" height="{end - top + 18}" '
                    f'rx="6" fill="{shades[i % len(shades)]}"/>')
    for x, label in ((client, "client"), (server, "server")):
        body.append(f'<rect x="{x - 55}" y="16" width="110" height="30" rx="5" fill="#2b4c7e"/>')
        body.append(_text(x, 36, label, size=15, anchor="middle", weight="bold", fill="#ffffff"))
        body.append(f'<line x1="{x}" y1="46" x2="{x}" y2="{bottom}" stroke="#2b4c7e" stroke-width="2"/>')
    body.append('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
                'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/>'
                '</marker></defs>')
    mid = (client + server) / 2
    for kind, name, detail, note, top in rows:
        if kind == "phase":
            body.append(_text(mid, top, name, size=12, anchor="middle", weight="bold", fill="#555"))
            continue
        body.append(_text(mid, top + 12, name, size=13, anchor="middle", weight="bold"))
        for i, line in enumerate(detail):
            body.append(_text(mid, top + 28 + 16 * i, line, size=11, anchor="middle", fill="#444"))
        arrowY = top + 20 + 16 * len(detail)
        start, end = (client, server) if kind in (">", "<>") else (server, client)
        markers = ' marker-end="url(#arrow)"' + (' marker-start="url(#arrow)"' if kind == "<>" else "")
        body.append(f'<line x1="{start}" y1="{arrowY}" x2="{end}" y2="{arrowY}" stroke="#333" '
                    f'stroke-width="1.5"{markers}/>')
        for i, line in enumerate([note] if isinstance(note, str) else note or []):
            if end == server:
                body.append(_text(server + 12, arrowY + 4 + 14 * i, line, size=11, fill="#1d6b35", style="italic"))
            else:
                body.append(_text(client - 12, arrowY + 4 + 14 * i, line, size=11, anchor="end", fill="#1d6b35",
                                  style="italic"))
    body.append(_text(width / 2, height - 12, "sudp/1 handshake (docs/protocol.md sections 2, 5 and 9)",
                      size=11, anchor="middle", fill="#666"))
    return _svg(width, height, "The sudp/1 handshake", body)


# -- the performance figures ---------------------------------------------------------------------

def figuresTable(path):
    """
    @return: the rows of the first table after "## Figures" in C{path}, each
        a dict by column heading.
    """
    lines = open(path, encoding="utf-8").read().split("\n")
    start = lines.index("## Figures")
    table = []
    for line in lines[start:]:
        if line.startswith("|"):
            table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif table:
            break
    header, rows = table[0], table[2:]
    return [dict(zip(header, row)) for row in rows]


def ratioRows(rows):
    """
    @return: (label, low, high, goal or None, met) for every rate (a row
        whose sudp figure is per second) with a ratio; "the same, ..." rows
        are named after the row above. Times (CPU per message, round trips)
        are left out: for them a higher ratio is worse.
    """
    out, previous = [], None
    for row in rows:
        label = row["figure"]
        if label.startswith("the same, "):
            label = f"{previous} ({label[len('the same, '):]})"
        else:
            previous = label
        found = re.match(r"(\d+\.\d+)(?:-(\d+\.\d+))?", row["ratio"])
        if not found or "/s" not in row["sudp"]:
            continue
        low = float(found.group(1))
        high = float(found.group(2) or found.group(1))
        goal = re.search(r">=?\s*(\d+\.\d+)", row["goal"])
        out.append((label, low, high, float(goal.group(1)) if goal else None, row["met?"]))
    return out


def performanceSVG(markdown):
    data = ratioRows(figuresTable(markdown))
    labelWidth, plotWidth, lineHeight, top = 440, 480, 15, 76
    left = labelWidth + 20
    scaleMax = max(2.0, max(high for _, _, high, _, _ in data))
    scaleMax = int(scaleMax * 2 + 0.999) / 2  # up to the next 0.5
    rows, y = [], top
    for label, low, high, goal, met in data:
        lines = textwrap.wrap(label, 62)
        rows.append((lines, low, high, goal, met, y))
        y += 10 + lineHeight * len(lines)
    plotBottom = y
    height = plotBottom + 70

    def x(value):
        return left + plotWidth * value / scaleMax

    body = [_text(20, 28, "Throughput of sudp against its baseline measured in the same run", size=15,
                  weight="bold"),
            _text(20, 48, "ratio of rates, 1.0 = as fast as the baseline; bars: the range over runs in "
                          "docs/performance.md, \"Figures\"; red tick: the goal", size=11, fill="#555")]
    value = 0.0
    while value <= scaleMax + 1e-9:
        body.append(f'<line x1="{x(value):.1f}" y1="{top - 8}" x2="{x(value):.1f}" y2="{plotBottom}" '
                    f'stroke="{"#888" if value == 1.0 else "#ddd"}" stroke-width="{1.5 if value == 1.0 else 1}"/>')
        body.append(_text(x(value), plotBottom + 16, f"{value:.1f}", size=11, anchor="middle", fill="#555"))
        value += 0.5
    colours = {"yes": "#3a8f4f", "no": "#d4812a"}
    for lines, low, high, goal, met, y in rows:
        rowHeight = 10 + lineHeight * len(lines)
        for i, line in enumerate(lines):
            body.append(_text(labelWidth, y + 16 + lineHeight * i, line, size=12, anchor="end"))
        fill = colours.get(met.split(" ")[0], "#6d7fa3")
        barWidth = max(x(high) - x(low), 3)
        barTop = y + rowHeight / 2 - 7
        body.append(f'<rect x="{x(low):.1f}" y="{barTop:.1f}" width="{barWidth:.1f}" height="14" fill="{fill}"/>')
        right = x(low) + barWidth
        if goal is not None:
            body.append(f'<line x1="{x(goal):.1f}" y1="{barTop - 3:.1f}" x2="{x(goal):.1f}" '
                        f'y2="{barTop + 17:.1f}" stroke="#c0392b" stroke-width="2.5"/>')
            right = max(right, x(goal))
        text = f"{low:.2f}" if low == high else f"{low:.2f}-{high:.2f}"
        body.append(_text(right + 6, barTop + 11, text, size=11, fill="#333"))
    legendY = plotBottom + 48
    for j, (name, fill) in enumerate((("goal met", colours["yes"]), ("goal missed", colours["no"]),
                                      ("at parity, at the line, or no goal", "#6d7fa3"))):
        lx = left + j * 130
        body.append(f'<rect x="{lx}" y="{legendY - 10}" width="14" height="12" fill="{fill}"/>')
        body.append(_text(lx + 20, legendY, name, size=11))
    return _svg(left + plotWidth + 90, height, "sudp throughput against same-run baselines", body)


def main(argv=sys.argv[1:]):
    out = argv[0] if argv else os.path.join(ROOT, "docs", "images")
    os.makedirs(out, exist_ok=True)
    images = {
        "handshake.svg": handshakeSVG(),
        "performance.svg": performanceSVG(os.path.join(ROOT, "docs", "performance.md")),
    }
    for name, svg in images.items():
        with open(os.path.join(out, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(svg)
        print(os.path.join(out, name))


if __name__ == "__main__":
    main()
