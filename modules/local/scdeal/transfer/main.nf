process SCDEAL_TRANSFER {
    tag "${meta.id}:${meta.drug_key}"
    label 'process_gpu'

    conda "${projectDir}/environment.yml"
    container "scdeal/scdeal:${workflow.manifest.version}"

    input:
    tuple val(meta), path(cells), path(bulk), path(model)

    output:
    tuple val(meta), path("${prefix}/${meta.id}_${meta.drug_key}.h5ad"), emit: h5ad
    tuple val(meta), path("${prefix}/cell_model.pt")                   , emit: cell_model
    tuple val(meta), path("${prefix}/predictions.tsv")                 , emit: predictions
    path("${prefix}/{transfer_history.tsv,transfer_summary.json}")     , emit: results
    path("${prefix}/*_mqc.*")                                          , emit: mqc
    path("versions.yml")                                               , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}/${meta.drug_key}"
    """
    scdeal_transfer.py \\
        --cells ${cells} \\
        --bulk ${bulk} \\
        --model ${model} \\
        --sample ${meta.id} \\
        --drug ${meta.drug_key} \\
        --outdir ${prefix} \\
        --threads ${task.cpus} \\
        --versions versions.yml \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}/${meta.drug_key}"
    """
    mkdir -p ${prefix}
    touch ${prefix}/${meta.id}_${meta.drug_key}.h5ad ${prefix}/cell_model.pt ${prefix}/predictions.tsv ${prefix}/transfer_history.tsv ${prefix}/transfer_summary.json ${prefix}/${meta.id}_${meta.drug_key}_general_mqc.tsv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        scdeal: "${workflow.manifest.version}"
    END_VERSIONS
    """
}
