"""Real-time socket handlers (``@realtime_route``), one module per kind of socket.

Each module registers its routes when imported; ``ensemble.server`` imports
them while it builds the services.
"""
