"""Data lifecycle: retention rules give every cataloged product its EvictionDate; the ``lifecycle``
function evicts what is due (objects deleted, entry kept with ``Online=false``, ``product.evicted``),
never a pinned product nor an input of a waiting or running job."""
