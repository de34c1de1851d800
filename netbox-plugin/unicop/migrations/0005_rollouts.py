# Gradual rollout (docs/decisions/0061): a Rollout per NetBox request that touched more roots than
# UNICOP_ROLLOUT_MIN_ROOTS (its waves, the open wave, the failure threshold, who decided what), and its
# members: one row per root with its wave, its state (held until the wave opens, then released and ended)
# and the held intent. The root status `held` is derived from the members (a choice only: NetBox keeps
# choices out of migrations).

import django.db.models.deletion
import django.utils.timezone
import netbox.models.deletion
import taggit.managers
import utilities.json
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ('extras', '0144_customfield_status'),
        ('unicop', '0004_run_mode_drift_check'),
    ]

    operations = [
        migrations.CreateModel(
            name='Rollout',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ('created', models.DateTimeField(auto_now_add=True, null=True)),
                ('last_updated', models.DateTimeField(auto_now=True, null=True)),
                (
                    'custom_field_data',
                    models.JSONField(blank=True, default=dict, encoder=utilities.json.CustomFieldJSONEncoder),
                ),
                ('rollout_id', models.CharField(max_length=100, unique=True)),
                ('state', models.CharField(default='open', max_length=10)),
                ('plan', models.CharField(blank=True, max_length=100)),
                ('waves', models.JSONField(default=list)),
                ('current_wave', models.PositiveIntegerField(default=0)),
                ('wave_started', models.DateTimeField(blank=True, null=True)),
                ('failure_threshold', models.FloatField(default=0)),
                ('roots_total', models.PositiveIntegerField(default=0)),
                ('change_ids', models.JSONField(blank=True, default=list)),
                ('actor', models.CharField(blank=True, max_length=150)),
                ('reason', models.CharField(blank=True, max_length=500)),
                ('decided_by', models.CharField(blank=True, max_length=150)),
                ('opened', models.DateTimeField(default=django.utils.timezone.now)),
                ('ended', models.DateTimeField(blank=True, null=True)),
                ('tags', taggit.managers.TaggableManager(through='extras.TaggedItem', to='extras.Tag')),
            ],
            options={
                'ordering': ('-opened', '-id'),
            },
            bases=(netbox.models.deletion.DeleteMixin, models.Model),
        ),
        migrations.CreateModel(
            name='RolloutMember',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ('wave', models.PositiveIntegerField()),
                ('state', models.CharField(default='held', max_length=10)),
                ('intent', models.JSONField(blank=True, default=dict)),
                ('superseded', models.PositiveIntegerField(default=0)),
                ('run_id', models.CharField(blank=True, max_length=64)),
                ('outcome_class', models.CharField(blank=True, max_length=50)),
                ('updated', models.DateTimeField(default=django.utils.timezone.now)),
                (
                    'rollout',
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name='members',
                        to='unicop.rollout',
                    ),
                ),
                (
                    'root',
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name='rollout_members',
                        to='unicop.root',
                    ),
                ),
            ],
            options={
                'ordering': ('rollout', 'wave', 'id'),
                'indexes': [models.Index(fields=['root', 'state'], name='unicop_rolloutmember_root')],
                'constraints': [
                    models.UniqueConstraint(
                        fields=('rollout', 'root'), name='unicop_rolloutmember_rollout_root'
                    )
                ],
            },
        ),
    ]
