"""Dataset versions: manifests over archived segments and uploaded files (issue 20)."""
