"""Streamlit-side helpers shared by the pages. Everything shown comes from core/ objects."""
