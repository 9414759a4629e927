"""Train the reference models and export any trained model into the BentoML store.

Data -> train -> evaluate -> export are separate modules. Nothing outside this package
imports it; it imports the artifact contract from `services.artifact` so that export and
serving run the very same encoding and prediction code.
"""

__version__ = "0.1.0"
