"""What a build will cost before it is paid for (`raspberry estimate`, `build --dry-run`)."""
