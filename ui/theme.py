"""The page's own styles: what Streamlit's defaults cut, squeeze or grey out on a phone, a projector or a screen reader.

Injected once per run (st.html with a style element takes no space). Colours are chosen for >= 4.5:1 on white.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

FAVICON = str(Path(__file__).with_name("favicon.png"))  # bundled: no icon font or emoji fetched from a CDN
INK, MUTED, LINK, FOCUS = "#1f2328", "#4a4f5a", "#0b5cad", "#0b5cad"  # 15.8:1, 8.0:1, 6.6:1 on white

CSS = f"""
/* every metric value and label in full: wrap, never an ellipsis */
[data-testid="stMetricValue"], [data-testid="stMetricValue"] *, [data-testid="stMetricLabel"],
[data-testid="stMetricLabel"] * {{
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  overflow-wrap: anywhere; height: auto !important;
}}
[data-testid="stMetricValue"] {{ font-size: 1.6rem; line-height: 1.25; }}
/* code scrolls inside its own box */
[data-testid="stExpander"], [data-testid="stExpanderDetails"], [data-testid="stCode"] {{
  min-width: 0; max-width: 100%;
}}
[data-testid="stCode"] pre {{ overflow-x: auto; max-width: 100%; }}
/* the sidebar's page names wrap instead of ending in an ellipsis (longer in Russian) */
[data-testid="stSidebarNavLink"] span, [data-testid="stSidebarNavLink"] span * {{
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
}}
[data-testid="stSidebarNavLink"] {{ height: auto !important; min-height: 2rem; }}
/* home's links wrap instead of being cut */
[data-testid="stPageLink"] a, [data-testid="stPageLink"] a * {{
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important; height: auto;
}}
/* touch targets of at least 24 px */
[data-testid="stSlider"] div:has(> div > input[type="range"]) {{ width: 24px !important; height: 24px !important; }}
/* contrast: the question, captions, inline code, links */
[data-testid="stMain"] blockquote, [data-testid="stMain"] blockquote * {{ color: {INK} !important; }}
[data-testid="stMain"] blockquote {{ border-left-color: #6b7280 !important; opacity: 1 !important; }}
[data-testid="stMain"] code {{ color: {INK} !important; }}
[data-testid="stMain"] [data-testid="stCaptionContainer"],
[data-testid="stMain"] [data-testid="stCaptionContainer"] * {{
  color: {MUTED} !important; opacity: 1 !important;
}}
[data-testid="stMain"] [data-testid="stMarkdown"]:has([data-testid="stCaptionContainer"]) {{ opacity: 1 !important; }}
[data-testid="stMain"] [data-testid="stMarkdownContainer"] a {{ color: {LINK} !important; }}
.gl-preset-links {{ font-size: 0.875rem; color: {MUTED}; margin: 0; line-height: 1.8; }}
.gl-preset-links a, .gl-toc a {{ color: {LINK}; text-decoration: underline; }}
.gl-preset-links a.gl-active {{ font-weight: 700; }}
.gl-active-note {{ color: {MUTED}; }}
/* what a link's values became: one note at the top */
.gl-link-notes {{ background: #fff4d6; border-left: 4px solid #b45309; border-radius: 0.5rem; padding: 0.6rem 1rem;
  color: {INK}; overflow-wrap: anywhere; }}
.gl-link-notes p {{ margin: 0 0 0.25rem 0; font-weight: 600; }}
.gl-link-notes ul {{ margin: 0; padding-left: 1.2rem; }}
/* the table of contents */
.gl-toc {{ font-size: 0.95rem; }}
.gl-toc-label {{ font-weight: 600; margin: 0 0 0.25rem 0; color: {INK}; }}
.gl-toc ol {{ margin: 0; padding-left: 0; list-style: none; columns: 2 16rem; }}  /* the titles carry their numbers */
.gl-toc li {{ margin: 0.1rem 0; break-inside: avoid; }}
/* focus is visible on every control */
:focus-visible, [data-testid="stSlider"] div:has(> div > input[type="range"]:focus-visible) {{
  outline: 3px solid {FOCUS} !important; outline-offset: 2px !important;
}}
/* a note that comes and goes keeps its space: the chart below never jumps */
[class*="_nonfinite_"] {{ min-height: 4.25rem; }}
"""

PRESENT_CSS = """
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; padding-bottom: 1rem; max-width: 100%; }
[data-testid="stMain"] h1 { font-size: 2.2rem; padding: 0.25rem 0; }
[data-testid="stMain"] h2 { font-size: 1.7rem; padding: 0.5rem 0 0.25rem 0; }
[data-testid="stWidgetLabel"] p, [data-testid="stMetricLabel"] p { font-size: 1.15rem; }
[data-testid="stVerticalBlock"] { gap: 0.5rem; }
[class*="_nonfinite_"] { min-height: 2.75rem; }
[data-testid="stMain"] hr { margin: 0.25rem 0; }
/* an experiment's controls stay under the top bar while its charts scroll by (ui.Page._open_block) */
[data-testid="stLayoutWrapper"]:has(> [class*="st-key-gl_pinned_"]) {
  position: sticky; top: 3.75rem; z-index: 5; background: #fff; padding-bottom: 0.25rem;
  box-shadow: 0 6px 6px -6px rgba(31, 35, 40, 0.35);
}
[class*="st-key-gl_pinned_"], [class*="st-key-gl_pinned_"] [data-testid="stVerticalBlock"] { gap: 0.25rem; }
.gl-set-above { margin: 0; font-size: 1.05rem; color: #1f2328; }
"""


def inject(present: bool) -> None:
    st.html(f"<style>{CSS}{PRESENT_CSS if present else ''}</style>")
