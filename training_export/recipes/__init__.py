"""The built-in reference recipes, by name."""

from training_export.recipes.base import Recipe
from training_export.recipes.cancer_rf import CancerRF
from training_export.recipes.digits_mlp import DigitsRecipe
from training_export.recipes.fraud_xgb import FraudXGB

RECIPES: dict[str, Recipe] = {
    recipe.name: recipe for recipe in (FraudXGB(), CancerRF(), DigitsRecipe())
}

__all__ = ["RECIPES", "Recipe"]
