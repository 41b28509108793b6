"""A small layered graph layout in pure Python, written as SVG: the picture when Graphviz is not installed.

The steps are the classic ones for drawing a directed graph in layers, each kept simple:

1. **Layers** by longest path: a node sits one layer above its highest consumer, so every edge points down
   and each parameter sits right above the op that uses it (the roots are the bottom layer).
2. **Dummy points** split edges that skip layers, so long edges are routed around boxes, not through them;
   the long edges leaving one box share their dummies (a trunk) until they branch off.
3. **Order within a layer** by barycentres: a few sweeps down and up, each node moved to the mean position of
   its neighbours in the layer before; the order with the fewest crossings wins.
4. **Coordinates**: each layer is packed left to right and right to left towards those mean positions, and
   the two packings are averaged, which keeps boxes apart (both packings do) and edges short.

>>> from tinygrad_edu import Tensor
>>> w = Tensor([1.0, 2.0], requires_grad=True, name="w")
>>> svg = layout_svg((w * w).sum())
>>> svg.startswith("<svg"), svg.count('class="node ')
(True, 5)
"""

from __future__ import annotations

import heapq
import html
import os
from dataclasses import dataclass
from typing import Any

from .graph import (
    CHANGED_COLOUR,
    CLUSTER_COLOUR,
    FONT_FAMILY,
    HIGHLIGHT_COLOUR,
    ROLE_COLOURS,
    THUMB_CELLS,
    THUMB_POINTS,
    Picture,
    build_picture,
)

__all__ = ["layout_svg"]

_FONT = 12.0
_CHAR = 7.25  # advance of one character of a 12 px monospace font (FONT_FAMILY: about 0.6 em)
_LINE = 15.0
_PAD_X, _PAD_Y = 9.0, 6.0
_GAP = 22.0       # between neighbours in a layer
_LAYER_GAP = 34.0  # between layers
_MARGIN = 16.0
_SWEEPS = 8
_MAP_GAP = 4.0  # between thumbnails, and above them


@dataclass
class _Box:
    width: float
    height: float
    x: float = 0.0  # centre
    y: float = 0.0


def _size(kind: str, title: str, lines: list[str], maps: list[list[list[str]]] | None = None) -> tuple[float, float]:
    if kind == "op":
        text = max([len(title)] + [len(s) for s in lines])
        return max(text * _CHAR * 0.9 + 2 * _PAD_X + 8, 56.0), (1 + len(lines)) * _LINE * 0.9 + 2 * _PAD_Y
    text = max([len(title)] + [len(s) for s in lines])
    width, height = _maps_size(maps or [])
    return max(text * _CHAR, width) + 2 * _PAD_X, (1 + len(lines)) * _LINE + height + 2 * _PAD_Y


def _maps_size(maps: list[list[list[str]]]) -> tuple[float, float]:
    """Width and height of a box's thumbnails: a row of tiny heat-maps, ``_MAP_GAP`` apart, under the text."""
    if not maps:
        return 0.0, 0.0
    cell = _map_cell(maps)
    return (sum(len(m[0]) * cell for m in maps) + _MAP_GAP * (len(maps) - 1),
            max(len(m) for m in maps) * cell + _MAP_GAP)


def _map_cell(maps: list[list[list[str]]]) -> float:
    return THUMB_POINTS * 4 / 3 * THUMB_CELLS / max(max(len(m), len(m[0])) for m in maps)  # points -> px


def _crossings(upper: list[int], lower: list[int], down: dict[int, list[int]]) -> int:
    """Edge crossings between two adjacent layers, counted as inversions with a Fenwick tree (E log V)."""
    position = {v: k for k, v in enumerate(lower)}
    pairs = sorted((a, position[b]) for a, v in enumerate(upper) for b in down.get(v, ()) if b in position)
    tree = [0] * (len(lower) + 1)
    count = 0
    for inserted, (_, b) in enumerate(pairs):
        # NOTE: sorted by upper end, so every edge inserted before starts further left (or at the same node,
        # which is no crossing as its lower end is not greater); it crosses this one if it ends further right.
        k, at_most_b = b + 1, 0
        while k > 0:
            at_most_b += tree[k]
            k -= k & -k
        count += inserted - at_most_b
        k = b + 1
        while k <= len(lower):
            tree[k] += 1
            k += k & -k
    return count


def _layers(n: int, edges: list[tuple[int, int]]) -> tuple[list[int], list[tuple[int, int]]]:
    """Layer of every node (0 = top), and the edges pointing downwards (edges of a cycle are turned round)."""
    out: list[list[int]] = [[] for _ in range(n)]
    indegree = [0] * n
    for a, b in edges:
        out[a].append(b)
        indegree[b] += 1
    # Kahn's order; if a cycle blocks it (weights shared across collapsed modules can make one), the
    # lowest-numbered waiting node goes next and its incoming back edges are drawn upwards.
    order: list[int] = []
    placed = [False] * n
    ready = [v for v in range(n) if indegree[v] == 0]
    heapq.heapify(ready)
    waiting = 0  # every node below this one is placed
    while len(order) < n:
        if not ready:
            while placed[waiting]:
                waiting += 1
            heapq.heappush(ready, waiting)
        v = heapq.heappop(ready)
        if placed[v]:
            continue
        placed[v] = True
        order.append(v)
        for w in out[v]:
            indegree[w] -= 1
            if indegree[w] == 0 and not placed[w]:
                heapq.heappush(ready, w)
    rank = {v: k for k, v in enumerate(order)}
    forward = [(a, b) if rank[a] < rank[b] else (b, a) for a, b in edges if a != b]
    below: list[list[int]] = [[] for _ in range(n)]
    for a, b in forward:
        below[a].append(b)
    height = [0] * n  # longest path down to a sink
    for v in reversed(order):
        height[v] = max((height[w] + 1 for w in below[v]), default=0)
    top = max(height, default=0)
    return [top - h for h in height], forward


def _grouped(level: list[int], cluster_of: dict[int, int]) -> list[int]:
    """The layer's order with the members of each cluster side by side, where its first member was.

    Then a module's frame, drawn layer by layer around its members, holds no other box.
    """
    out: list[int] = []
    placed: set[int] = set()
    for v in level:
        if v in placed:
            continue
        k = cluster_of.get(v)
        group = [v] if k is None else [u for u in level if cluster_of.get(u) == k]
        out += group
        placed.update(group)
    return out


def _positions(picture: Picture) -> tuple[dict[str, _Box], list[list[tuple[float, float]]], float, float]:
    """Centre and size of every box, the points of every edge, and the size of the drawing."""
    ids = [node.id for node in picture.nodes]
    number = {node_id: k for k, node_id in enumerate(ids)}
    n = len(ids)
    raw_edges = [(number[e.tail], number[e.head]) for e in picture.edges]
    layer, forward = _layers(n, raw_edges)
    cluster_of = {number[m]: k for k, c in enumerate(picture.clusters) for m in c.members}

    # Split long edges into chains through dummy points (dummies are numbered from n up). All long edges
    # leaving one box share one trunk of dummies and branch off where they arrive: a constant or a weight
    # used by many ops far below costs one dummy per layer, not one per edge and layer.
    layer_of = list(layer)
    down: dict[int, list[int]] = {}
    up: dict[int, list[int]] = {}
    trunks: dict[int, list[int]] = {}
    chains: list[list[int]] = []
    for a, b in forward:
        trunk = trunks.setdefault(a, [])
        need = layer[b] - layer[a] - 1
        while len(trunk) < need:
            layer_of.append(layer[a] + 1 + len(trunk))
            trunk.append(len(layer_of) - 1)
        chain = [a, *trunk[:need], b]
        chains.append(chain)
        for s, t in zip(chain, chain[1:]):
            if t not in down.setdefault(s, []):
                down[s].append(t)
                up.setdefault(t, []).append(s)

    levels: list[list[int]] = [[] for _ in range(max(layer_of, default=0) + 1)]
    for v, depth in enumerate(layer_of):
        levels[depth].append(v)  # nodes in drawing order, dummies after in edge order

    def total_crossings() -> int:
        return sum(_crossings(levels[k], levels[k + 1], down) for k in range(len(levels) - 1))

    best, best_count = [list(level) for level in levels], total_crossings()
    for sweep in range(_SWEEPS):
        downward = sweep % 2 == 0
        sequence = range(1, len(levels)) if downward else range(len(levels) - 2, -1, -1)
        for k in sequence:
            neighbour = levels[k - 1] if downward else levels[k + 1]
            where = {v: p for p, v in enumerate(neighbour)}
            links = up if downward else down
            keyed = []
            for p, v in enumerate(levels[k]):
                near: list[float] = [where[u] for u in links.get(v, ()) if u in where]
                keyed.append((sum(near) / len(near) if near else float(p), p, v))
            levels[k] = [v for _, _, v in sorted(keyed)]
        count = total_crossings()
        if count < best_count:
            best, best_count = [list(level) for level in levels], count
    levels = [_grouped(level, cluster_of) for level in best]

    # Sizes along the layer (``across``) and between layers (``along``), whatever the direction.
    horizontal = picture.rankdir == "TB"
    boxes: dict[int, _Box] = {}
    for v in range(len(layer_of)):
        if v < n:
            node = picture.nodes[v]
            w, h = _size(node.kind, node.title, node.lines, node.maps)
        else:
            w, h = 6.0, 6.0
        boxes[v] = _Box(w, h)

    def across(v: int) -> float:
        return boxes[v].width if horizontal else boxes[v].height

    def along(v: int) -> float:
        return boxes[v].height if horizontal else boxes[v].width

    centre: dict[int, float] = {}
    for level in levels:
        cursor = 0.0
        for v in level:
            centre[v] = cursor + across(v) / 2
            cursor += across(v) + _GAP

    def place(level: list[int], wanted: list[float]) -> None:
        if not level:
            return
        separation = [(across(level[k - 1]) + across(level[k])) / 2 + _GAP for k in range(1, len(level))]
        left = list(wanted)
        for k in range(1, len(level)):
            left[k] = max(wanted[k], left[k - 1] + separation[k - 1])
        right = list(wanted)
        for k in range(len(level) - 2, -1, -1):
            right[k] = min(wanted[k], right[k + 1] - separation[k])
        # NOTE: both packings keep every gap >= separation, so their average does too: no overlaps.
        for k, v in enumerate(level):
            centre[v] = (left[k] + right[k]) / 2

    for sweep in range(4):
        downward = sweep % 2 == 0
        sequence = range(1, len(levels)) if downward else range(len(levels) - 2, -1, -1)
        for k in sequence:
            links = up if downward else down
            wanted = []
            for v in levels[k]:
                near = [centre[u] for u in links.get(v, ())]
                wanted.append(sum(near) / len(near) if near else centre[v])
            place(levels[k], wanted)

    low = min((centre[v] - across(v) / 2 for v in centre), default=0.0)
    offset = [0.0]
    for level in levels:
        offset.append(offset[-1] + max((along(v) for v in level), default=0.0) + _LAYER_GAP)
    for k, level in enumerate(levels):
        thickness = offset[k + 1] - offset[k] - _LAYER_GAP
        for v in level:
            mid_across = centre[v] - low + _MARGIN
            mid_along = offset[k] + thickness / 2 + _MARGIN
            boxes[v].x, boxes[v].y = (mid_across, mid_along) if horizontal else (mid_along, mid_across)

    # Edge points: leave the tail's near side, pass the dummies, enter the head's far side. Parallel edges
    # between the same two boxes (a + a) are spread apart so both stay visible.
    repeat: dict[tuple[int, int], int] = {}
    totals: dict[tuple[int, int], int] = {}
    for a, b in raw_edges:
        totals[(a, b)] = totals.get((a, b), 0) + 1
    chain_of: dict[tuple[int, int], list[list[int]]] = {}
    for (a, b), chain in zip(forward, chains):
        chain_of.setdefault((a, b), []).append(chain)
    used: dict[tuple[int, int], int] = {}
    routes: list[list[tuple[float, float]]] = []
    for a, b in raw_edges:
        reverse = (a, b) not in chain_of
        key = (b, a) if reverse else (a, b)
        chain = chain_of[key][used.get(key, 0) % len(chain_of[key])]
        used[key] = used.get(key, 0) + 1
        k = repeat.get((a, b), 0)
        repeat[(a, b)] = k + 1
        shift = (k - (totals[(a, b)] - 1) / 2) * 10.0
        points = [_anchor(boxes[chain[0]], horizontal, True, shift)]
        points += [(boxes[d].x, boxes[d].y) for d in chain[1:-1]]
        points.append(_anchor(boxes[chain[-1]], horizontal, False, shift))
        routes.append(points[::-1] if reverse else points)

    width = max((box.x + box.width / 2 for box in boxes.values()), default=0.0) + _MARGIN
    height = max((box.y + box.height / 2 for box in boxes.values()), default=0.0) + _MARGIN
    return {ids[v]: boxes[v] for v in range(n)}, routes, width, height


def _anchor(box: _Box, horizontal: bool, leaving: bool, shift: float) -> tuple[float, float]:
    sign = 1.0 if leaving else -1.0
    if horizontal:
        return box.x + shift, box.y + sign * box.height / 2
    return box.x + sign * box.width / 2, box.y + shift


def _text(s: str) -> str:
    return html.escape(s, quote=True)


def _frames(picture: Picture, boxes: dict[str, _Box],
            horizontal: bool) -> list[tuple[Any, list[tuple[float, float]], tuple[float, float, float, float],
                                            tuple[float, float]]]:
    """``(cluster, outline, (left, top, right, bottom), label's x and y)`` of the frame around each module.

    The outline is drawn layer by layer: in each layer it spans only the module's own boxes (which the layout
    keeps side by side), and neighbouring layers' spans are joined, so no other box falls inside the frame.
    The label sits just above the frame, in the gap between layers.
    """
    frames = []
    for cluster in picture.clusters:
        bands: dict[float, list[float]] = {}  # position along the layers -> [low, high] across, [start, end]
        for m in cluster.members:
            b = boxes[m]
            along, across = (b.y, b.x) if horizontal else (b.x, b.y)
            half_along, half_across = (b.height, b.width) if horizontal else (b.width, b.height)
            band = bands.setdefault(round(along, 1), [across - half_across / 2, across + half_across / 2,
                                                      along - half_along / 2, along + half_along / 2])
            band[0] = min(band[0], across - half_across / 2)
            band[1] = max(band[1], across + half_across / 2)
            band[2] = min(band[2], along - half_along / 2)
            band[3] = max(band[3], along + half_along / 2)
        spans = [bands[k] for k in sorted(bands)]
        pad_across, pad_along = (_PAD_X, _PAD_Y) if horizontal else (_PAD_Y, _PAD_X)
        for span in spans:
            span[0] -= pad_across
            span[1] += pad_across
        spans[0][2] -= pad_along
        spans[-1][3] += pad_along
        for upper, lower in zip(spans, spans[1:]):
            middle = (upper[3] + lower[2]) / 2
            upper[3] = lower[2] = middle
        # Around the outline: down the far side, back up the near side.
        points: list[tuple[float, float]] = []
        for span in spans:
            points += [(span[1], span[2]), (span[1], span[3])]
        for span in reversed(spans):
            points += [(span[0], span[3]), (span[0], span[2])]
        if not horizontal:
            points = [(a, b) for b, a in points]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        first = spans[0]  # the label sits above the frame's first layer, like a tab
        label = (first[0] + 4, first[2] - 5) if horizontal else (first[2] + 4, first[0] - 5)
        frames.append((cluster, points, (min(xs), min(ys), max(xs), max(ys)), label))
    return frames


def picture_to_svg(picture: Picture) -> str:
    """Lay out and draw a ``Picture``; every node is one ``<g class="node">`` holding one ``<rect>``."""
    boxes, routes, width, height = _positions(picture)
    frames = _frames(picture, boxes, picture.rankdir == "TB")
    labels = [(c, x, y) for c, _, _, (x, y) in frames]
    legend_height = _LINE * (1 + len(picture.notes)) + 14
    total_width = max(width, 4 * 110.0 + 2 * _MARGIN,
                      max((len(note) * _CHAR + 2 * _MARGIN for note in picture.notes), default=0.0),
                      max((b[2] + 4 for _, _, b, _ in frames), default=0.0),
                      max((x + len(c.label) * _CHAR + 4 for c, x, _ in labels), default=0.0))
    total_height = height + legend_height
    # A frame may reach above or left of the first boxes: the drawing then starts at negative coordinates.
    low_x = min([0.0] + [b[0] - 4 for _, _, b, _ in frames])
    low_y = min([0.0] + [b[1] - 4 for _, _, b, _ in frames] + [y - _LINE for _, _, y in labels])
    view_width, view_height = total_width - low_x, total_height - low_y
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{view_width:.0f}" height="{view_height:.0f}" '
        f'viewBox="{low_x:.1f} {low_y:.1f} {view_width:.1f} {view_height:.1f}" font-family="{FONT_FAMILY}" '
        f'font-size="{_FONT:g}">',
        f'<rect class="background" x="{low_x:.1f}" y="{low_y:.1f}" width="100%" height="100%" fill="white"/>',
    ]
    for cluster, points, _, (x, y) in frames:
        outline = " ".join(f"{a:.1f},{b:.1f}" for a, b in points)
        out.append(f'<g class="cluster" id="{cluster.id}"><title>{cluster.id}</title>'
                   f'<polygon points="{outline}" fill="none" stroke="{CLUSTER_COLOUR}" stroke-dasharray="6,3" '
                   f'stroke-linejoin="round"/>'
                   f'<text x="{x:.1f}" y="{y:.1f}" fill="#5c4a10">'
                   f'<tspan font-weight="bold">{_text(cluster.title)}</tspan>'
                   f'{_text(cluster.label[len(cluster.title):])}</text></g>')
    out.append('<g class="edges">')
    for edge, points in zip(picture.edges, routes):
        colour, stroke = (HIGHLIGHT_COLOUR, 2.5) if edge.highlight else ("#555555", 1.0)
        d = "M " + " L ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        (x1, y1), (x2, y2) = points[-2], points[-1]
        length = max(((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5, 1e-9)
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        tip = f"{x2:.1f},{y2:.1f} {x2 - 8 * ux - 4 * uy:.1f},{y2 - 8 * uy + 4 * ux:.1f} " \
              f"{x2 - 8 * ux + 4 * uy:.1f},{y2 - 8 * uy - 4 * ux:.1f}"
        out.append(f'<g class="edge"><title>{edge.tail}-&gt;{edge.head}</title>'
                   f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="{stroke}"/>'
                   f'<polygon points="{tip}" fill="{colour}" stroke="{colour}"/></g>')
    out.append("</g>")
    out.append('<g class="nodes">')
    for node in picture.nodes:
        box = boxes[node.id]
        left, top = box.x - box.width / 2, box.y - box.height / 2
        colour, stroke = (HIGHLIGHT_COLOUR, 3.0) if node.highlight else ("#444444", 1.0)
        if node.changed and not node.highlight:
            colour, stroke = CHANGED_COLOUR, 2.5
        radius = box.height / 2 if node.kind == "op" else 6.0
        dash = ' stroke-dasharray="5,3"' if node.kind in ("module", "more") or node.changed else ""
        size = _FONT * 0.9 if node.kind == "op" else _FONT
        out.append(f'<g class="node role-{node.role}" id="node-{node.id}"><title>{node.id}</title>'
                   f'<rect x="{left:.1f}" y="{top:.1f}" width="{box.width:.1f}" height="{box.height:.1f}" '
                   f'rx="{radius:.1f}" fill="{ROLE_COLOURS[node.role]}" stroke="{colour}" '
                   f'stroke-width="{stroke}"{dash}/>')
        rows = [node.title] + node.lines
        step = size * 1.25
        maps_width, maps_height = _maps_size(node.maps)
        first = box.y - maps_height / 2 - step * (len(rows) - 1) / 2 + size * 0.35
        if node.maps:  # under the text, centred: one tiny heat-map per channel
            cell, x = _map_cell(node.maps), box.x - maps_width / 2
            top_of_maps = box.y + box.height / 2 - _PAD_Y - maps_height + _MAP_GAP
            for m in node.maps:
                for r, line in enumerate(m):
                    out.extend(f'<rect class="thumb" x="{x + c * cell:.1f}" y="{top_of_maps + r * cell:.1f}" '
                               f'width="{cell:.2f}" height="{cell:.2f}" fill="{colour_}"/>'
                               for c, colour_ in enumerate(line))
                x += len(m[0]) * cell + _MAP_GAP
        for k, row in enumerate(rows):
            weight = ' font-weight="bold"' if k == 0 else ""
            out.append(f'<text x="{box.x:.1f}" y="{first + k * step:.1f}" text-anchor="middle" '
                       f'font-size="{size:g}"{weight}>{_text(row)}</text>')
        out.append("</g>")
    out.append("</g>")
    out.append(f'<g class="legend" transform="translate({_MARGIN:g},{height + 4:.1f})">')
    for k, role in enumerate(("input", "parameter", "intermediate", "loss")):
        out.append(f'<rect x="{k * 110}" y="0" width="104" height="{_LINE + 4:g}" fill="{ROLE_COLOURS[role]}" '
                   f'stroke="#444444"/><text x="{k * 110 + 52}" y="{_LINE - 1:g}" text-anchor="middle">{role}</text>')
    for k, note in enumerate(picture.notes):
        out.append(f'<text x="0" y="{(k + 2) * _LINE + 6:g}">{_text(note)}</text>')
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def layout_svg(*roots: Any, path: str | os.PathLike[str] | None = None, **options: Any) -> str:
    """The graph as SVG text from the built-in layout (no Graphviz needed); written to ``path`` if given.

    Takes the same options as ``to_dot`` (``params``, ``show_values``, ``rankdir``, ``collapse_modules``,
    ``max_depth``, ``highlight``, ``max_nodes``). Boxes never overlap; the layout is plainer than Graphviz's.
    """
    picture = build_picture(roots, caller="layout_svg", **options)
    svg = picture_to_svg(picture)
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(svg)
    return svg
