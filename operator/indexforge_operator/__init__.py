"""IndexForge operator: reconciles IndexForge custom resources into the whole stack."""
