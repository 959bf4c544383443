"""The floor: one slider and one Altair chart, the least a page can cost. Every page is timed beside it."""

import altair as alt
import pandas as pd
import streamlit as st

n = st.slider("points", 10, 200, 100, key="floor_points")
df = pd.DataFrame({"x": range(n), "y": [i * i for i in range(n)]})
st.altair_chart(alt.Chart(df).mark_line().encode(x="x:Q", y="y:Q", tooltip=["x", "y"]), width="stretch")
