"""Gradient Lab: the entry point. Page config, the navigation over every built page, the shared seed and language."""

import time

import streamlit as st

import content
from content import LANGS, words
from core.registry import PAGES
from ui import gate, links, server, theme, workers

server.start()

APP = words("app")  # in the run's language, once use() below has chosen it
links.correct("", (links.SEED, links.PRESENT, links.LANG), "app")  # before the widgets seed from the link
lang = content.use(links.language())  # every word of this run, page titles included, in the reader's language
links.keep_language(lang)
present = bool(links.link_value("", links.PRESENT))
# The favicon is a bundled image: a Material icon would fetch its font from a CDN.
st.set_page_config(page_title=APP["app"], page_icon=theme.FAVICON, layout="wide",
                   initial_sidebar_state="collapsed" if present else "auto")

home = st.Page("pages/home.py", title=APP["home"], icon=":material/home:", default=True)
concepts = [st.Page(p.path, title=words(p.name)["title"], icon=p.icon, url_path=p.name) for p in PAGES]
current = st.navigation({APP["nav.start"]: [home], APP["nav.concepts"]: concepts})
# Each browser tab names its page.
st.set_page_config(page_title=APP["app"] if current is home else f"{current.title} · {APP['app']}")
theme.inject(present)

with st.sidebar:
    # Each language in its own words; the address says `lang=zh` (ui.links keeps it there, the reader's choice only)
    st.selectbox(APP["lang.label"], list(LANGS), index=list(LANGS).index(lang), key=links.LANG_CHOICE,
                 format_func=LANGS.get, on_change=links.choose_language, help=APP["lang.help"])
    st.number_input(APP["seed.label"], min_value=0, max_value=9999, value=0, step=1, key="seed",
                    bind="query-params", help=APP["seed.help"])
    st.toggle(APP["present.label"], value=False, key="present", bind="query-params", help=APP["present.help"])

workers.asked_at(time.monotonic())  # this run's jobs are served in the order the runs began
try:
    with gate.drawing():  # a few sessions draw at once; the rest wait in line, not in 5 ms slices of the GIL
        current.run()
except Exception as error:  # st.stop and st.rerun are not Exceptions: they pass
    server.failure(error)
