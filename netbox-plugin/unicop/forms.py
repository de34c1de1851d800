from django import forms
from netbox.forms import NetBoxModelFilterSetForm

from .models import ReconciliationRun, Root, RunStateChoices


class FreezeForm(forms.Form):
    reason = forms.CharField(max_length=500, help_text='Why automation stops (or resumes) for this root')


class RootFilterForm(NetBoxModelFilterSetForm):
    model = Root
    kind = forms.CharField(required=False)
    frozen = forms.NullBooleanField(
        required=False, widget=forms.Select(choices=[('', '---------'), ('true', 'Yes'), ('false', 'No')])
    )


class ReconciliationRunFilterForm(NetBoxModelFilterSetForm):
    model = ReconciliationRun
    state = forms.MultipleChoiceField(choices=RunStateChoices, required=False)
