"""The Bento: runners, gateway, inference pipeline, and the model artifact contract they share."""
