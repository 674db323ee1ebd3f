"""Rule tests (``detection-job test``): fixture events, the alerts a rule must give for them, run on throwaway
indices through the same steps as ``run``."""
