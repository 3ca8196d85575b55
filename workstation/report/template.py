"""The jinja2 template of the HTML rehearsal report (kept in Python so it ships with the package)."""
# ruff: noqa: E501  (HTML lines)

REPORT_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Rehearsal report: {{ summary.case_name }}</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #1d1f24; }
 h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
 table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
 th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
 td.num { text-align: right; font-variant-numeric: tabular-nums; }
 .views { display: flex; flex-wrap: wrap; gap: 1em; }
 figure { margin: 0; } figcaption { font-size: 0.85em; color: #555; max-width: 640px; }
 .bad { color: #b00020; font-weight: bold; } .ok { color: #1b7f3b; }
 .note { color: #555; font-size: 0.9em; } code { font-size: 0.9em; }
</style>
</head>
<body>
<h1>Rehearsal report</h1>
<p class="note">Case <b>{{ summary.case_name }}</b> &middot; written {{ summary.created_utc }} by twin {{ summary.software_version }}
&middot; all geometry in patient LPS millimetres (x to the patient's left, y posterior, z superior).</p>

<h2>Summary (de-identified)</h2>
<table>
<tr><th>De-identified</th><td>{{ summary.deidentified }}{% if summary.deid_method %} ({{ summary.deid_method }}){% endif %}</td></tr>
{% if summary.removed_count is not none %}<tr><th>Attributes removed</th><td>{{ summary.removed_count }} kinds</td></tr>{% endif %}
{% for v in summary.volumes %}
<tr><th>Volume {{ v.id }}</th><td>{{ v.modality }} {{ v.size }} voxels, spacing {{ v.spacing }} mm, extent {{ v.extent }} mm</td></tr>
{% endfor %}
<tr><th>Contents</th><td>{{ summary.counts }}</td></tr>
</table>

<h2>Views</h2>
<div class="views">
{% for view in views %}
<figure><img src="{{ view.src }}" alt="{{ view.caption }}" width="{{ view.width }}" height="{{ view.height }}">
<figcaption>{{ view.caption }}</figcaption></figure>
{% else %}
<p class="note">No picture: {{ views_note }}</p>
{% endfor %}
</div>
{% if views_note and views %}<p class="note">{{ views_note }}</p>{% endif %}

<h2>Segments</h2>
{% if segments %}
<table>
<tr><th>Segment</th><th>Label</th><th>Volume (ml)</th><th>Surface (cm&sup2;)</th><th>Mean (HU)</th><th>SD (HU)</th><th>Min</th><th>Max</th></tr>
{% for s in segments %}
<tr><td>{{ s.name }}</td><td class="num">{{ s.value }}</td><td class="num">{{ "%.2f"|format(s.volume_ml) }}</td>
<td class="num">{{ "%.1f"|format(s.surface_area_mm2 / 100) }}</td>
{% if s.voxels %}<td class="num">{{ "%.1f"|format(s.mean) }}</td><td class="num">{{ "%.1f"|format(s.std) }}</td>
<td class="num">{{ "%.0f"|format(s.min) }}</td><td class="num">{{ "%.0f"|format(s.max) }}</td>{% else %}<td colspan="4">empty</td>{% endif %}</tr>
{% endfor %}
</table>
{% else %}<p class="note">No segments.</p>{% endif %}

<h2>Plan</h2>
{% if plan.trajectories %}
<h3>Trajectories</h3>
<table>
<tr><th>Name</th><th>Entry (LPS mm)</th><th>Target (LPS mm)</th><th>Length (mm)</th><th>Tool diameter (mm)</th></tr>
{% for t in plan.trajectories %}
<tr><td>{{ t.name }}</td><td>{{ t.entry }}</td><td>{{ t.target }}</td><td class="num">{{ "%.1f"|format(t.length_mm) }}</td>
<td class="num">{{ "%.2f"|format(t.tool_diameter_mm) }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% for title, rows in plan.other %}
<h3>{{ title }}</h3>
<table>{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}</table>
{% endfor %}
{% if not plan.trajectories and not plan.other %}<p class="note">The plan is empty.</p>{% endif %}

<h3>Safety analysis</h3>
{% for s in safety %}
<p><b>{{ s.trajectory }}</b>: margin {{ s.margin_mm }} mm{% if s.entry_angle_deg is not none %}, entry angle {{ "%.1f"|format(s.entry_angle_deg) }}&deg;{% endif %} &mdash;
{% if s.violated %}<span class="bad">margin violated by {{ s.violated|join(", ") }}</span>{% else %}<span class="ok">no structure within the margin</span>{% endif %}</p>
<table>
<tr><th>Structure</th><th>Min distance to axis (mm)</th><th>Clearance to tool wall (mm)</th><th>Violated</th></tr>
{% for r in s.structures %}
<tr><td>{{ r.segment }}</td><td class="num">{{ "%.2f"|format(r.min_distance_mm) }}</td><td class="num">{{ "%.2f"|format(r.clearance_mm) }}</td>
<td class="{{ 'bad' if r.violated else 'ok' }}">{{ "yes" if r.violated else "no" }}</td></tr>
{% endfor %}
</table>
{% else %}
<p class="note">No safety analysis is stored in the case (run the planning safety check).</p>
{% endfor %}

<h2>Mechanics</h2>
{% for m in mechanics %}
<h3>{{ m.name }}</h3>
<table>
<tr><th>Model</th><td>{{ m.model }}</td></tr>
<tr><th>Status</th><td>{{ m.status }}</td></tr>
<tr><th>Mesh</th><td>{{ m.mesh }}</td></tr>
<tr><th>Max displacement</th><td>{{ "%.3f"|format(m.max_displacement_mm) }} mm</td></tr>
{% if m.max_von_mises_kpa is not none %}<tr><th>Max von Mises stress</th><td>{{ "%.3f"|format(m.max_von_mises_kpa) }} kPa</td></tr>{% endif %}
{% if m.max_tool_force_n is not none %}<tr><th>Max tool force</th><td>{{ "%.3f"|format(m.max_tool_force_n) }} N</td></tr>{% endif %}
</table>
{% for img in m.images %}<figure><img src="{{ img.src }}" alt="{{ img.caption }}"><figcaption>{{ img.caption }}</figcaption></figure>{% endfor %}
{% else %}
<p class="note">No mechanics result is stored in the case.</p>
{% endfor %}

<h2>Plan digest</h2>
<p><code>{{ digest.algorithm }}: {{ digest.value }}</code></p>
<p class="note">{{ digest.description }}</p>
</body>
</html>
"""
