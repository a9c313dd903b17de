"""`python3 -m app.consumer`: the test app's consumer mode (see app.main.consumer_cli, app.messaging)."""
import sys

from app import main as appmain

if __name__ == "__main__":
    appmain.consumer_cli(sys.argv[1:])
