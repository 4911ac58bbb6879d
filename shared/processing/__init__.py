"""Production preparation: ESA task tables, input selection policies and IPF JobOrders."""
