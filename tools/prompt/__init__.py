"""Prompting: how well do prompts alone do? Prompt evaluation (Step 1 and 2), its variants, and the generation backends."""
