"""HTTP and websocket routes. Each module is one router; main.py includes them."""
