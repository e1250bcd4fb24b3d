"""swiotlb bounce-buffer pools in the shared region (Linux kernel/dma/swiotlb.c; facts §1)."""
