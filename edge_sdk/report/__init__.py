"""The validation report of `edge-sdk report`: one self-contained HTML page per evaluation
(`page.render`), its plots (`svg`) and where its numbers came from (`lineage`)."""
