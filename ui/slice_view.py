"""One MPR view (axial, coronal or sagittal): a numpy slice drawn as a QImage with overlays.

Mouse: left click/drag moves the crosshair (or paints with the active tool), right drag sets the
window (horizontal: width, vertical: level), middle drag or Shift+left drag pans, the wheel
scrolls slices, Ctrl+wheel zooms. Keys: PageUp/PageDown and Up/Down scroll, +/- zoom, R resets
the view.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QKeyEvent, QMouseEvent, QPainter, QPen, QPolygonF, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget
from scipy import ndimage

from segmentation.editing import trace_region
from ui import slicing
from ui.document import SEED_BACKGROUND, Document
from workstation.errors import InputError

SAFE_RGB, UNSAFE_RGB, UNCHECKED_RGB = (60, 200, 90), (235, 60, 60), (80, 200, 230)


def trajectory_color(document: Document, name: str) -> QColor:
    """Green when the last safety check passed, red when it failed, cyan when unchecked."""
    meta = document.safety(name)
    if meta is None:
        return QColor(*UNCHECKED_RGB)
    return QColor(*(SAFE_RGB if meta.get("safe") else UNSAFE_RGB))

PLANE_COLORS = {"axial": QColor(230, 80, 80), "coronal": QColor(80, 200, 80), "sagittal": QColor(230, 200, 60)}
PREVIEW_RGBA = (60, 160, 255, 110)
TRACE_RGBA = (255, 220, 0, 230)  # the level-trace outline under the cursor
NORMAL_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}  # the LPS axis normal to each patient plane
SEED_BACKGROUND_RGB = (0.55, 0.55, 0.6)


def rgba_image(rgba: NDArray[np.uint8]) -> QImage:
    """A QImage owning a copy of (rows, cols, 4) RGBA bytes."""
    rgba = np.ascontiguousarray(rgba)
    rows, cols = rgba.shape[:2]
    return QImage(rgba.data, cols, rows, 4 * cols, QImage.Format.Format_RGBA8888).copy()


class SliceView(QWidget):
    """An axial, coronal or sagittal view of the document's volume through its crosshair."""

    hovered = Signal(object)  # LPS point (3,) under the cursor, or None
    activated = Signal(str)  # plane name, when clicked or focused
    maximize_requested = Signal(str)
    point_picked = Signal(str, object, object)  # picking tool ("landmark", "trajectory", "plane", "push"),
    # LPS point, the view's normal (LPS unit vector)
    endpoint_dragged = Signal(str, str, object)  # trajectory name, "entry" / "target", LPS point
    live_dragged = Signal(object)  # live tool: (3,) displacement (mm) from where the drag started
    outline_refused = Signal(str)  # draw, scissors, level trace: why an edit was refused (one line)
    alt_changed = Signal(bool)  # Alt pressed or released while this view has the focus (for every view)

    def __init__(self, document: Document, plane: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document, self.plane = document, plane
        self.setObjectName(f"view-{plane}")
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setAcceptDrops(False)
        self.zoom, self.pan = 1.0, QPointF(0.0, 0.0)
        self.tool = "navigate"  # navigate | paint | erase | seed | seed_background | draw | scissors | level_trace
        self.brush_radius_mm = 5.0
        self.segment_name: str | None = None
        self.slice: slicing.Slice | None = None
        self._drag: tuple[str, QPointF, tuple[float, float] | QPointF] | None = None
        self._hover: tuple[QPointF, bool] | None = None  # the cursor over this view, and whether Alt is held
        for signal in (document.case_changed, document.crosshair_changed, document.window_changed,
                       document.labels_changed, document.display_changed, document.seeds_changed,
                       document.plan_changed):
            signal.connect(self.update)
        document.case_changed.connect(self.reset_view)

    # --- geometry --------------------------------------------------------------------------
    def _current_slice(self) -> slicing.Slice | None:
        doc = self.document
        if doc.volume is None:
            return None
        self.slice = slicing.cut(doc.volume, self.plane, doc.crosshair_lps, follow_volume=doc.views_follow_volume)
        return self.slice

    def _image_rect(self, current: slicing.Slice) -> QRectF:
        rows, cols = current.pixels.shape
        du, dv = current.pixel_mm
        base = min(self.width() / (cols * du), self.height() / (rows * dv))
        scale = base * self.zoom
        w, h = cols * du * scale, rows * dv * scale
        return QRectF(self.width() / 2 - w / 2 + self.pan.x(), self.height() / 2 - h / 2 + self.pan.y(), w, h)

    def normal_lps(self) -> NDArray[np.float64]:
        """(3,) unit LPS normal of the plane shown (a patient axis, or an oblique volume's own axis
        when the views follow it)."""
        current = self.slice or self._current_slice()
        if current is None:
            return np.eye(3)[NORMAL_AXIS[self.plane]]
        normal = np.cross(current.col_step_lps, current.row_step_lps)
        return normal / np.linalg.norm(normal)

    def pixel_at(self, pos: QPointF) -> tuple[float, float] | None:
        """(col, row) of the slice pixel under widget position ``pos``."""
        current = self.slice or self._current_slice()
        if current is None:
            return None
        rect = self._image_rect(current)
        rows, cols = current.pixels.shape
        return ((pos.x() - rect.left()) / rect.width() * cols - 0.5,
                (pos.y() - rect.top()) / rect.height() * rows - 0.5)

    def lps_at(self, pos: QPointF) -> NDArray[np.float64] | None:
        """LPS mm under widget position ``pos`` (on this view's plane)."""
        pixel = self.pixel_at(pos)
        return None if pixel is None or self.slice is None else self.slice.lps_at(*pixel)

    def widget_pos_of(self, point_lps: NDArray[np.float64]) -> QPointF | None:
        """Widget position of an LPS point projected on this view."""
        current = self.slice or self._current_slice()
        if current is None:
            return None
        col, row = current.pixel_of(point_lps)
        rect = self._image_rect(current)
        rows, cols = current.pixels.shape
        return QPointF(rect.left() + (col + 0.5) / cols * rect.width(), rect.top() + (row + 0.5) / rows * rect.height())

    # --- drawing ---------------------------------------------------------------------------
    def paintEvent(self, event: object) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(0, 0, 0))
        current = self._current_slice()
        if current is None:
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "Drop a DICOM folder, a volume file or a case here\nor use File > Open")
            painter.end()
            return
        doc = self.document
        gray = slicing.window_to_gray(current.pixels, doc.level, doc.width)
        rgba = np.empty(gray.shape + (4,), dtype=np.uint8)
        rgba[..., :3] = gray[..., None]
        rgba[..., 3] = 255
        rgba = self._blend_overlays(rgba)
        rect = self._image_rect(current)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 1.0)
        painter.drawImage(rect, rgba_image(rgba))
        self._draw_crosshair(painter, rect)
        self._draw_outline(painter)
        self._draw_plan(painter)
        self._draw_letters(painter)
        self._draw_info(painter, current)
        if self.hasFocus():
            painter.setPen(QPen(PLANE_COLORS[self.plane], 2))
            painter.drawRect(self.rect().adjusted(1, 1, -1, -1))
        painter.end()

    def _blend_overlays(self, rgba: NDArray[np.uint8]) -> NDArray[np.uint8]:
        doc = self.document
        layers: list[NDArray[np.uint8]] = []
        labels = doc.label_array()
        colors, opacity = doc.overlay_colors()
        if labels is not None and colors:
            layers.append(slicing.overlay_rgba(self._cut(labels), colors, opacity))
        if doc.seeds is not None:
            seed_colors = {s.value: s.color_rgb for s in doc.segments()}
            seed_colors[SEED_BACKGROUND] = SEED_BACKGROUND_RGB
            layers.append(slicing.overlay_rgba(self._cut(doc.seeds), seed_colors, {v: 0.9 for v in seed_colors}))
        if doc.preview_mask is not None:
            mask = self._cut(doc.preview_mask)
            layer = np.zeros(mask.shape + (4,), dtype=np.uint8)
            layer[mask] = PREVIEW_RGBA
            layers.append(layer)
        traced = self.trace_preview()
        if traced is not None:
            layer = np.zeros(traced.shape + (4,), dtype=np.uint8)
            layer[traced & ~ndimage.binary_erosion(traced, border_value=0)] = TRACE_RGBA
            layers.append(layer)
        out = rgba.astype(np.float32)
        for layer in layers:
            alpha = layer[..., 3:4].astype(np.float32) / 255.0
            out[..., :3] = out[..., :3] * (1 - alpha) + layer[..., :3] * alpha
        return out.astype(np.uint8)

    def trace_preview(self) -> NDArray[np.bool_] | None:
        """(rows, cols) region of the slice shown that a level-trace click under the cursor would
        fill (:func:`segmentation.editing.trace_region` on the view's pixels, from the voxel the
        click would trace from), or ``None``.

        Only views of voxel slices preview (volumes parallel to the patient axes, or views that
        follow an oblique volume): there the preview is exactly what the click fills. A resampled
        view of an oblique volume does not show the voxel slice the click traces.
        """
        doc = self.document
        if (self.tool != "level_trace" or not self.segment_name or self._hover is None or self._drag is not None
                or doc.volume is None):
            return None
        current = self.slice or self._current_slice()
        point = self.lps_at(self._hover[0])
        if current is None or point is None or current.index < 0:
            return None
        voxel = np.rint(doc.volume.lps_to_ijk_points(point))
        if np.any(voxel < 0) or np.any(voxel >= np.array(doc.volume.size_ijk)):
            return None  # the click is refused there
        col, row = (int(round(c)) for c in current.pixel_of(doc.volume.ijk_to_lps_points(voxel)))
        if not np.isfinite(current.pixels[row, col]):
            return None
        return trace_region(current.pixels, (row, col), darker=doc.trace_darker or self._hover[1])

    def _cut(self, array: NDArray) -> NDArray:
        assert self.document.volume is not None
        return slicing.cut(self.document.volume, self.plane, self.document.crosshair_lps, array=array,
                           labels=True, follow_volume=self.document.views_follow_volume).pixels

    def _draw_outline(self, painter: QPainter) -> None:
        """The outline being drawn with the draw or scissors tool, closed back to its start."""
        if self._drag is None or self._drag[0] != "outline":
            return
        corners = [self.widget_pos_of(p) for p in self._drag[2][1]]  # type: ignore[index]
        polygon = QPolygonF([c for c in corners if c is not None])
        painter.setPen(QPen(QColor(255, 220, 0), 1.5, Qt.PenStyle.DashLine))
        painter.drawPolygon(polygon)

    def _draw_crosshair(self, painter: QPainter, rect: QRectF) -> None:
        pos = self.widget_pos_of(self.document.crosshair_lps)
        if pos is None:
            return
        others = [p for p in slicing.PLANES if p != self.plane]
        # The vertical line is the plane whose normal runs along this view's columns, and so on.
        col_dir = self.slice.col_step_lps if self.slice is not None else np.zeros(3)
        # (a view that follows an oblique volume may have columns nearest its own normal: the
        # other plane nearest them is taken)
        vertical = max(others, key=lambda p: abs(col_dir[NORMAL_AXIS[p]]))
        horizontal = next(p for p in others if p != vertical)
        gap = 8
        painter.setPen(QPen(PLANE_COLORS[vertical], 1))
        painter.drawLine(QPointF(pos.x(), rect.top()), QPointF(pos.x(), pos.y() - gap))
        painter.drawLine(QPointF(pos.x(), pos.y() + gap), QPointF(pos.x(), rect.bottom()))
        painter.setPen(QPen(PLANE_COLORS[horizontal], 1))
        painter.drawLine(QPointF(rect.left(), pos.y()), QPointF(pos.x() - gap, pos.y()))
        painter.drawLine(QPointF(pos.x() + gap, pos.y()), QPointF(rect.right(), pos.y()))

    def _draw_plan(self, painter: QPainter) -> None:
        """Landmarks (dots) and trajectories (entry-target lines coloured by safety), projected on the view."""
        doc = self.document
        if doc.case is None:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for landmark in doc.case.plan.landmarks:
            pos = self.widget_pos_of(np.asarray(landmark.position_lps))
            painter.setPen(QPen(QColor(255, 160, 40), 2))
            painter.drawEllipse(pos, 4, 4)
            painter.drawText(pos + QPointF(6, -6), landmark.name)
        for trajectory in doc.case.plan.trajectories:
            entry = self.widget_pos_of(np.asarray(trajectory.entry_lps))
            target = self.widget_pos_of(np.asarray(trajectory.target_lps))
            color = trajectory_color(doc, trajectory.name)
            painter.setPen(QPen(color, 2))
            painter.drawLine(entry, target)
            painter.drawEllipse(entry, 5, 5)
            painter.setBrush(color)
            painter.drawEllipse(target, 4, 4)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawText(entry + QPointF(7, -7), trajectory.name)
        for plane in doc.case.plan.resection_planes:
            line = self._plane_line(np.asarray(plane.origin_lps), np.asarray(plane.normal_lps))
            if line is not None:
                pen = QPen(QColor(255, 120, 220), 2, Qt.PenStyle.DashLine)
                painter.setPen(pen)
                painter.drawLine(*line)
                painter.drawText(line[0] + QPointF(6, 14), plane.name)
        from ui.implant_tools import draw_implants

        draw_implants(self, painter)
        if doc.push_point is not None:
            at = self.widget_pos_of(doc.push_point)
            painter.setPen(QPen(QColor(255, 60, 255), 2))
            painter.drawLine(at + QPointF(-7, -7), at + QPointF(7, 7))
            painter.drawLine(at + QPointF(-7, 7), at + QPointF(7, -7))
        if doc.pending_entry is not None:
            painter.setPen(QPen(QColor(255, 230, 0), 2))
            painter.drawEllipse(self.widget_pos_of(doc.pending_entry), 6, 6)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)

    def _plane_line(self, origin: NDArray[np.float64], normal: NDArray[np.float64]) -> tuple[QPointF, QPointF] | None:
        """Widget end points of where a plane cuts this view's slice (None when parallel to it)."""
        current = self.slice
        if current is None:
            return None
        rows, cols = current.pixels.shape
        a, b = current.col_step_lps @ normal, current.row_step_lps @ normal
        k = (current.origin_lps - origin) @ normal  # f(c, r) = a c + b r + k on the plane
        corners = [(-0.5, -0.5), (cols - 0.5, -0.5), (cols - 0.5, rows - 0.5), (-0.5, rows - 0.5)]
        crossings = []
        for (c0, r0), (c1, r1) in zip(corners, corners[1:] + corners[:1], strict=True):
            f0, f1 = a * c0 + b * r0 + k, a * c1 + b * r1 + k
            if f0 == f1 or f0 * f1 > 0:
                continue
            t = f0 / (f0 - f1)
            crossings.append((c0 + t * (c1 - c0), r0 + t * (r1 - r0)))
        if len(crossings) < 2:
            return None
        rect = self._image_rect(current)

        def to_widget(c: float, r: float) -> QPointF:
            return QPointF(rect.left() + (c + 0.5) / cols * rect.width(), rect.top() + (r + 0.5) / rows * rect.height())

        return to_widget(*crossings[0]), to_widget(*crossings[1])

    def endpoint_near(self, pos: QPointF, *, within_px: float = 8.0) -> tuple[str, str] | None:
        """(trajectory name, "entry" / "target") of a trajectory end drawn within ``within_px`` of ``pos``."""
        doc = self.document
        if doc.case is None:
            return None
        best: tuple[float, tuple[str, str]] | None = None
        for trajectory in doc.case.plan.trajectories:
            for end, lps in (("target", trajectory.target_lps), ("entry", trajectory.entry_lps)):
                at = self.widget_pos_of(np.asarray(lps))
                distance = float(np.hypot(at.x() - pos.x(), at.y() - pos.y()))
                if distance <= within_px and (best is None or distance < best[0]):
                    best = (distance, (trajectory.name, end))
        return None if best is None else best[1]

    def _draw_letters(self, painter: QPainter) -> None:
        left, right, top, bottom = self.slice.edge_letters() if self.slice is not None else slicing.letters(self.plane)
        painter.setPen(QColor(255, 220, 60))
        font = QFont(painter.font())
        font.setBold(True)
        font.setPointSize(12)
        painter.setFont(font)
        w, h, m = self.width(), self.height(), 22 * max(len(left), len(right), len(top), len(bottom), 1)
        center = Qt.AlignmentFlag.AlignCenter
        painter.drawText(QRectF(0, h / 2 - m / 2, m, m), center, left)
        painter.drawText(QRectF(w - m, h / 2 - m / 2, m, m), center, right)
        painter.drawText(QRectF(w / 2 - m / 2, 0, m, m), center, top)
        painter.drawText(QRectF(w / 2 - m / 2, h - m, m, m), center, bottom)

    def _draw_info(self, painter: QPainter, current: slicing.Slice) -> None:
        doc = self.document
        font = QFont(painter.font())
        font.setBold(False)
        font.setPointSize(9)
        painter.setFont(font)
        painter.setPen(PLANE_COLORS[self.plane])
        axis = NORMAL_AXIS[self.plane]
        total = slicing.n_slices(doc.volume, self.plane, follow_volume=doc.views_follow_volume) \
            if doc.volume is not None else 0
        number = f"{current.index + 1}/{total}" if current.index >= 0 else "resampled"
        if current.index >= 0 and doc.volume is not None and slicing.is_oblique(doc.volume):
            number = f"volume slice {number}"  # a view that follows an oblique volume
        text = f"{self.plane.capitalize()}  {'LPS'[axis]} {doc.crosshair_lps[axis]:.1f} mm  ({number})"
        painter.drawText(QRectF(26, 4, self.width() - 52, 18), Qt.AlignmentFlag.AlignLeft, text)
        painter.setPen(QColor(220, 220, 220))
        painter.drawText(QRectF(26, self.height() - 22, self.width() - 52, 18), Qt.AlignmentFlag.AlignLeft,
                         f"W {doc.width:.0f}  L {doc.level:.0f}  zoom {self.zoom:.2f}")

    # --- interaction -----------------------------------------------------------------------
    def reset_view(self) -> None:
        self.zoom, self.pan = 1.0, QPointF(0.0, 0.0)
        self.update()

    def scroll(self, steps: int) -> None:
        """Move the crosshair ``steps`` slices along this view's normal (positive: +axis)."""
        doc = self.document
        if doc.volume is None:
            return
        point = slicing.step(doc.volume, self.plane, doc.crosshair_lps, steps, follow_volume=doc.views_follow_volume)
        doc.set_crosshair(point)

    def set_zoom(self, zoom: float) -> None:
        self.zoom = float(np.clip(zoom, 0.2, 40.0))
        self.update()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120.0
        if steps == 0:
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.set_zoom(self.zoom * (1.15 ** steps))
        else:
            # Wheel up moves towards superior / anterior / patient-right ... as in most viewers: +1 slice up.
            self.scroll(int(np.sign(steps) * max(1, round(abs(steps)))) * (1 if self.plane == "axial" else -1))
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        up = 1 if self.plane == "axial" else -1
        if key in (Qt.Key.Key_PageUp, Qt.Key.Key_Up):
            self.scroll(up * (10 if key == Qt.Key.Key_PageUp and event.modifiers() & Qt.KeyboardModifier.ShiftModifier
                              else 1))
        elif key in (Qt.Key.Key_PageDown, Qt.Key.Key_Down):
            self.scroll(-up * (10 if key == Qt.Key.Key_PageDown
                               and event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1))
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.set_zoom(self.zoom * 1.25)
        elif key == Qt.Key.Key_Minus:
            self.set_zoom(self.zoom / 1.25)
        elif key == Qt.Key.Key_R:
            self.reset_view()
        elif key == Qt.Key.Key_Alt:
            self.alt_changed.emit(True)
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Alt:
            self.alt_changed.emit(False)
        else:
            super().keyReleaseEvent(event)

    def alt_held(self, held: bool) -> None:
        """Alt pressed or released (in whichever view has the focus): the level-trace preview under
        the cursor turns darker or back."""
        if self._hover is not None:
            self._hover = (self._hover[0], held)
            if self.tool == "level_trace":
                self.update()

    def focusInEvent(self, event: object) -> None:  # noqa: N802
        self.activated.emit(self.plane)
        self.update()
        super().focusInEvent(event)  # type: ignore[arg-type]

    def focusOutEvent(self, event: object) -> None:  # noqa: N802
        self.update()
        super().focusOutEvent(event)  # type: ignore[arg-type]

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.maximize_requested.emit(self.plane)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.setFocus()
        self.activated.emit(self.plane)
        pos = event.position()
        button = event.button()
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and shift):
            self._drag = ("pan", pos, QPointF(self.pan))
        elif button == Qt.MouseButton.RightButton:
            self._drag = ("window", pos, (self.document.level, self.document.width))
        elif button == Qt.MouseButton.LeftButton and self.tool == "live":
            start = self.lps_at(pos)
            if start is not None:
                self._drag = ("live", pos, start)  # type: ignore[assignment]
        elif button == Qt.MouseButton.LeftButton and self.tool in ("landmark", "trajectory", "plane", "push",
                                                                   "implant"):
            grabbed = self.endpoint_near(pos) if self.tool == "trajectory" else None
            if grabbed is not None:
                self._drag = ("endpoint", pos, grabbed)  # type: ignore[assignment]
            else:
                point = self.lps_at(pos)
                if point is not None:
                    normal = self.normal_lps()  # the plane shown, pointing along its patient axis
                    if normal[NORMAL_AXIS[self.plane]] < 0:
                        normal = -normal
                    self.point_picked.emit(self.tool, point, normal)
        elif button == Qt.MouseButton.LeftButton and self.tool == "level_trace" and self.segment_name:
            point = self.lps_at(pos)
            if point is not None:
                modifiers = event.modifiers()
                self._refusable(lambda: self.document.level_trace(
                    point, self.segment_name or "", plane=self.plane,
                    darker=self.document.trace_darker or bool(modifiers & Qt.KeyboardModifier.AltModifier),
                    erase=bool(modifiers & Qt.KeyboardModifier.ControlModifier)))
        elif button == Qt.MouseButton.LeftButton and self.tool in ("draw", "scissors") and self.segment_name:
            point = self.lps_at(pos)
            if point is not None:
                self._drag = ("outline", pos, (self.tool, [point]))  # type: ignore[assignment]
        elif button == Qt.MouseButton.LeftButton:
            self._drag = ("tool", pos, pos)
            self._apply_tool(pos)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        point = self.lps_at(pos)
        self.hovered.emit(point)
        self._hover = (pos, bool(event.modifiers() & Qt.KeyboardModifier.AltModifier))
        if self.tool == "level_trace":
            self.update()
        if self._drag is None:
            return
        kind, start, state = self._drag
        delta = pos - start
        if kind == "pan":
            assert isinstance(state, QPointF)
            self.pan = state + delta
            self.update()
        elif kind == "live":
            point = self.lps_at(pos)
            if point is not None:
                self.live_dragged.emit(point - np.asarray(state))
        elif kind == "endpoint":
            name, end = state  # type: ignore[misc]
            point = self.lps_at(pos)
            if point is not None:
                self.endpoint_dragged.emit(name, end, point)
        elif kind == "window":
            assert isinstance(state, tuple)
            level, width = state
            self.document.set_window(level - delta.y() * 2.0, width + delta.x() * 4.0)
        elif kind == "tool":
            self._apply_tool(pos)
        elif kind == "outline" and point is not None:
            state[1].append(point)  # type: ignore[index]
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        drag, self._drag = self._drag, None
        if drag is not None and drag[0] == "tool" and self.tool in ("paint", "erase"):
            self.document.end_stroke(f"{self.tool} {self.segment_name} ({self.plane})")
        elif drag is not None and drag[0] == "outline":
            self.update()
            tool, points = drag[2]  # type: ignore[misc]
            if tool != self.tool or len(np.unique(np.asarray(points), axis=0)) < 3:
                return  # the tool changed while drawing (Esc cancels), or a click, not an outline
            ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
            if tool == "scissors":
                self._refusable(lambda: self.document.scissors(points, self.segment_name or "", plane=self.plane,
                                                               keep_inside=ctrl, normal_lps=self.normal_lps()))
            else:
                self._refusable(lambda: self.document.draw(points, self.segment_name or "", plane=self.plane,
                                                           erase=ctrl))

    def _refusable(self, edit: Callable[[], None]) -> None:
        """Run a tool's edit; a refusal (bad outline, empty segment) is reported in one line, not raised."""
        try:
            edit()
        except InputError as exc:
            self.outline_refused.emit(f"{self.tool.replace('_', ' ').capitalize()}: {exc}")

    def leaveEvent(self, event: object) -> None:  # noqa: N802
        self.hovered.emit(None)
        self._hover = None
        if self.tool == "level_trace":
            self.update()

    def _apply_tool(self, pos: QPointF) -> None:
        point = self.lps_at(pos)
        if point is None:
            return
        doc = self.document
        if self.tool == "navigate" or (self.tool != "seed_background" and not self.segment_name):
            # Only the two in-plane coordinates move; the slice shown here stays.
            normal = self.normal_lps()
            doc.set_crosshair(point + ((doc.crosshair_lps - point) @ normal) * normal)
        elif self.tool in ("paint", "erase"):
            doc.paint(point, self.brush_radius_mm, self.segment_name or "", erase=self.tool == "erase",
                      plane=self.plane if doc.brush_2d else None)
        elif self.tool == "seed" and doc.label_map is not None:
            doc.paint_seed(point, self.brush_radius_mm, doc.label_map.segment(self.segment_name).value)
        elif self.tool == "seed_background":
            doc.paint_seed(point, self.brush_radius_mm, SEED_BACKGROUND)
