"""Home: what Gradient Lab answers, the training step drawn as its parts, and the questions, each linked."""

import streamlit as st

import ui
from content import words
from core.registry import PAGES

ui.ensure_app_shell()
W = words("home")
built = {p.name: p for p in PAGES}

st.title(W["title"])
ui.link_notes()
st.markdown(f"### {W['tagline']}")
st.markdown(W["intro"])

st.header(W["loop_title"], divider="gray")
st.caption(W["loop_caption"])
loop = W["loop"]
for row in (loop[:4], loop[4:]):
    for column, (i, step) in zip(st.columns(4), enumerate(row, start=loop.index(row[0]) + 1)):
        with column.container(border=True):
            st.markdown(f"**{i}.** `{step['code']}`")
            st.caption(step["what"])
            if step["page"] in built:
                info = built[step["page"]]
                st.page_link(info.path, label=words(info.name)["title"], icon=info.icon)

st.header(W["questions_title"], divider="gray")
for question in W["questions"]:
    if question["page"] in built:
        info = built[question["page"]]
        st.page_link(info.path, label=question["text"], icon=info.icon)
st.caption(W["seed_note"])
