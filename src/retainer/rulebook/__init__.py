"""The rulebook: YAML files loaded into frozen, validated models."""
