"""The questions stage: duplicates across the build and earlier builds (exact, near, reworded), the
judge on unsure pairs and the teacher's confirmation of written answers."""
