#!/usr/bin/env bash
# Role assignments for the pipeline's user-assigned managed identity (docs/DEPLOY.md).
# Usage: deploy/roles.sh <resource-group> <identity-name> <openai-account> <storage-account>
set -euo pipefail
RG=$1 IDENTITY=$2 OPENAI=$3 STORAGE=$4

PRINCIPAL=$(az identity show -g "$RG" -n "$IDENTITY" --query principalId -o tsv)
OPENAI_ID=$(az cognitiveservices account show -g "$RG" -n "$OPENAI" --query id -o tsv)
STORAGE_ID=$(az storage account show -g "$RG" -n "$STORAGE" --query id -o tsv)

# Read stored completions (and call the judge deployment) on the Azure OpenAI resource.
az role assignment create --assignee-object-id "$PRINCIPAL" --assignee-principal-type ServicePrincipal \
  --role "Cognitive Services OpenAI User" --scope "$OPENAI_ID"
# Publish reports, datasets and Parquet; write compute logs.
az role assignment create --assignee-object-id "$PRINCIPAL" --assignee-principal-type ServicePrincipal \
  --role "Storage Blob Data Contributor" --scope "$STORAGE_ID"
