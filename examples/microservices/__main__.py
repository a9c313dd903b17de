import pathlib, sys
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))  # the repo root: same components as the main stacks
from components.program import main; main()
