"""mmuspec impl/: the optimized KVM MMU mechanisms and their named variants."""
